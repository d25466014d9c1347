"""Pure authentication and authorization logic: no server, no database, no I/O.
Imports contract/ only.
"""
