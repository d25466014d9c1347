"""scopegate as the gate in front of a platform's own services: the identity it tells them
(identity.py), calls forwarded upstream over gRPC after authorization, and the answers to
other proxies' authorization questions. Imports dispatch and what lies below it, and the
transports beside it.
"""
