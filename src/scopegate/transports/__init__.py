"""Transports turn wire calls into `dispatch.Call`s and responses back; no rules live here.
Imports dispatch and what lies below it; the REST app mounts portal/.
"""
