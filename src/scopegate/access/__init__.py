"""The request-time access engine: credentials and relations looked up and cached,
remembered decisions, throttles, and the change log that evicts them. Imports auth/,
contract/ and store/ (reads only).
"""
