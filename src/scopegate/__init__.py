"""scopegate: an identity and access server wire-compatible with the Clarifai V2 API."""

__version__ = "0.1.0"
