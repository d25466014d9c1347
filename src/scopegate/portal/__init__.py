"""The web portal: sign up, log in, and manage PATs, API keys, apps and collaborators.

Server-rendered (Jinja2) pages under `/portal`. Every change and every list goes through
the same `Dispatcher` and handlers as the API, authenticated with the login session the
portal keeps in a cookie: the portal has no second path that could disagree with the API.
Imports dispatch and what lies below it, and REST helpers it shares with transports/rest.
"""

from scopegate.portal.app import build_portal

__all__ = ["build_portal"]
