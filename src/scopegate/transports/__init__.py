"""Transports turn wire calls into `dispatch.Call`s and responses back; no rules live here."""
