"""Interim: the organization documents moved to handlers/organizations.py (the routes are
extension methods now); kept until the CLI imports them from there."""

from scopegate.handlers.organizations import member_json, org_json, team_json

__all__ = ["member_json", "org_json", "team_json"]
