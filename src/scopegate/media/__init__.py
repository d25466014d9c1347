"""Images: decoding bytes and fetching URLs under hard limits, and background downloads of
input URLs. Imports contract/ and store/.
"""
