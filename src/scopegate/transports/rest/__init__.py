"""REST: the ASGI app, the router over the catalog's bindings, the refusal gate, the JSON
codec, extension routes. Imports dispatch and what lies below it (contract/, access/'s
throttle error, services/ for logins), and mounts portal/.
"""
