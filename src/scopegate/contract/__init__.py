"""The Clarifai V2 contract as scopegate reads it: the method catalog from the official
descriptors, and statuses. Imports nothing of scopegate's.
"""
