"""Composition and running: settings, the shared services, TLS, heap, seeding and
`scopegate serve`. May import every other package.
"""
