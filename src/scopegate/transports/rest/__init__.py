"""REST: the ASGI app, the router over the catalog's bindings, the refusal gate, the JSON
codec, extension routes. Imports dispatch and contract/.
"""
