"""The identity headers and what is stripped from a client's headers (gateway/identity.py)."""

from __future__ import annotations

from scopegate.auth.policy import Relation
from scopegate.auth.principal import AppRef, CredentialKind, Principal
from scopegate.gateway.identity import identity_headers, strip_incoming


def _principal(kind: CredentialKind, app: AppRef | None = None) -> Principal:
    return Principal(
        user_id="alice",
        kind=kind,
        credential_id="key-public-id",
        scopes=frozenset({"Inputs_Get", "All"}),
        endpoints=frozenset(),
        app=app,
    )


def test_identity_headers_name_the_caller_its_credential_standing_and_scopes():
    headers = identity_headers(
        _principal(CredentialKind.PAT),
        Relation.COLLABORATOR,
        frozenset({"Models_Get", "Inputs_Get", "Concepts_Get"}),
        "sg-1-2",
    )
    assert headers == [
        ("x-scopegate-caller", "alice"),
        ("x-scopegate-credential", "key-public-id"),
        ("x-scopegate-credential-type", "personal_access_token"),
        ("x-scopegate-scopes", "Concepts_Get,Inputs_Get,Models_Get"),
        ("x-scopegate-relation", "collaborator"),
        ("x-request-id", "sg-1-2"),
    ]


def test_each_credential_kind_and_relation_has_its_name():
    expected_types = {
        CredentialKind.PAT: "personal_access_token",
        CredentialKind.APP_KEY: "app_specific_key",
        CredentialKind.SESSION: "session",
    }
    expected_relations = {
        Relation.OWNER: "owner",
        Relation.COLLABORATOR: "collaborator",
        Relation.MEMBER: "member",
        Relation.PUBLIC: "public",
    }
    for kind, type_name in expected_types.items():
        for relation, relation_name in expected_relations.items():
            headers = dict(identity_headers(_principal(kind), relation, frozenset(), "r"))
            assert headers["x-scopegate-credential-type"] == type_name
            assert headers["x-scopegate-relation"] == relation_name
            assert headers["x-scopegate-scopes"] == ""


def test_a_call_without_a_caller_carries_its_request_id_only():
    assert identity_headers(None, None, frozenset(), "sg-9") == [("x-request-id", "sg-9")]


def test_secrets_and_every_scopegate_header_are_stripped_whatever_their_case():
    incoming = [
        ("authorization", "Key sgp_secret"),
        ("Authorization", "Key sgp_secret"),
        ("X-Clarifai-Session-Token", "session-secret"),
        ("x-scopegate-caller", "mallory"),
        ("X-ScopeGate-Scopes", "All"),
        ("x-scopegate-anything-new", "x"),
        ("x-request-id", "client-chosen"),
        ("content-type", "application/grpc"),
        ("x-scopegate", "not the prefix: kept"),
    ]
    assert strip_incoming(incoming) == [
        ("x-request-id", "client-chosen"),
        ("content-type", "application/grpc"),
        ("x-scopegate", "not the prefix: kept"),
    ]


def test_raw_byte_headers_are_stripped_the_same_way():
    incoming = [(b"authorization", b"Key s"), (b"X-Scopegate-Caller", b"m"), (b"accept", b"*/*")]
    assert strip_incoming(incoming) == [(b"accept", b"*/*")]


def test_nested_ids_are_found_where_the_contract_puts_them():
    """Ids a forwarded request names beside its own user_app_id: authorized and rewritten
    (gateway/forward.py); the catalog has them in these methods only."""
    from scopegate.contract.catalog import load_catalog
    from scopegate.gateway.forward import nested_id_paths

    catalog = load_catalog()
    found = {name: nested_id_paths(spec) for name, spec in catalog.methods.items()}
    assert {name: paths for name, paths in found.items() if paths} == {
        "PostModelVersionsUpload": (("upload_config", "user_app_id"),),
        "PostPipelineStepVersionsUpload": (("upload_config", "user_app_id"),),
        "PostArtifactVersionsUpload": (("upload_config", "user_app_id"),),
        "PostLogEntries": (("log_entries", "meta", "user_app_id"),),
        "PostComputePlaneMetrics": (("compute_plane_metrics", "meta", "user_app_id"),),
    }
