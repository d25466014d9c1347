"""scopegate: an identity and access server wire-compatible with the Clarifai V2 API.

Packages from the top layer down: cli, server, portal, transports, then `dispatch` (the
one request path), handlers, `context` (what handlers receive), services, access, media and
runners, store, auth and `request_limits`, contract. A module imports only from layers
below its own (pyproject.toml's [tool.importlinter] holds the contract).
"""

__version__ = "0.1.0"
