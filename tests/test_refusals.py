"""Why was I denied (issue 14, part 4): every refusal is recorded by its request id and
explained by GET /scopegate/v1/denials/{req_id} to the refused credential's owner (in full)
and to the target's owner or organization admins (without the caller's private facts);
anyone else gets 11101. On both transports and both databases; `scopegate explain`; the
retention bound. Expectations from the README ("Explaining refusals")."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import ORGS, add_collaborator, call, me, ok, rest
from tests.support.clients import Client, new_id

R = resources_pb2
DENIALS = "/scopegate/v1/denials/"


def _app(client: Client, pat: str, owner: str = "me") -> str:
    app_id = new_id("app")
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(user_id=owner), apps=[R.App(id=app_id)]),
            metadata=client.auth(pat),
        )
    )
    return app_id


def _pat(client: Client, pat: str, scopes, apps=()) -> str:
    made = ok(
        client.stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=me(),
                keys=[R.Key(type="personal_access_token", scopes=list(scopes), apps=list(apps))],
            ),
            metadata=client.auth(pat),
        )
    )
    return made.keys[0].id


def _list_concepts(client: Client, secret: str, owner: str, app_id: str):
    return client.stub.ListConcepts(
        service_pb2.ListConceptsRequest(user_app_id=me(user_id=owner, app_id=app_id)),
        metadata=client.auth(secret),
    )


def _denial(server, req_id: str, secret: str) -> tuple[int, dict]:
    _status, body = rest(server, "GET", DENIALS + req_id, secret)
    return body["status"]["code"], body.get("denial", {})


def test_a_refusal_is_explained_to_its_credentials_owner(server, client: Client, user):
    owner, owner_pat = user
    app_id = _app(client, owner_pat)
    reader = _pat(client, owner_pat, ["Apps_Get"])
    refused = _list_concepts(client, reader, owner, app_id)
    # The refusal's own answer is as before: its status, nothing about the record.
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert refused.status.details.startswith("ListConcepts requires scopes the credential lacks")
    req_id = refused.status.req_id
    code, denial = _denial(server, req_id, owner_pat)
    assert code == codes.SUCCESS, denial
    assert denial["layer"] == "scopes"
    assert denial["method"] == "ListConcepts"
    assert denial["target"] == {"user_id": owner, "app_id": app_id}
    assert "Concepts_Get" in denial["missing_scopes"]
    assert "Concepts_Get" in denial["required_scopes"] and denial["held_scopes"] == ["Apps_Get"]
    assert denial["credential"]["type"] == "personal_access_token"
    assert denial["credential"]["id"] and denial["credential"]["id"] != reader
    assert "Add the missing scopes" in denial["fix"]
    assert reader not in json.dumps(denial)  # never the secret
    # A fine-grained token outside its app, and a stranger: their own layers.
    other = _app(client, owner_pat)
    fine = _pat(client, owner_pat, ["All"], [R.App(id=app_id)])
    outside = _list_concepts(client, fine, owner, other)
    assert outside.status.code == codes.CONN_DOES_NOT_EXIST
    assert _denial(server, outside.status.req_id, owner_pat)[1]["layer"] == "fine-grained limit"
    stranger = server.create_user(new_id())
    hidden = _list_concepts(client, stranger, owner, app_id)
    code, denial = _denial(server, hidden.status.req_id, stranger)
    assert code == codes.SUCCESS and denial["layer"] == "relation"
    # The app's owner sees that refusal too, without the stranger's private facts.
    code, seen = _denial(server, hidden.status.req_id, owner_pat)
    assert code == codes.SUCCESS and seen["layer"] == "relation"
    assert not {"credential", "held_scopes", "details", "client_address"} & set(seen)


def test_who_may_read_a_record(server, client: Client, user):
    owner, owner_pat = user
    shared, guest, guest_pat, _ = add_collaborator(
        server, client, owner_pat, ["Apps_Get", "Concepts_Get"]
    )
    refused = client.stub.PostConcepts(
        service_pb2.PostConceptsRequest(
            user_app_id=me(user_id=owner, app_id=shared), concepts=[R.Concept(id="c")]
        ),
        metadata=client.auth(guest_pat),
    )
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    req_id = refused.status.req_id
    code, full = _denial(server, req_id, guest_pat)
    assert code == codes.SUCCESS and full["layer"] == "grant"
    assert "Concepts_Add" in full["missing_scopes"] and full["held_scopes"] == ["All"]
    code, owners = _denial(server, req_id, owner_pat)
    assert code == codes.SUCCESS and owners["caller_user_id"] == guest
    assert "Concepts_Add" in owners["missing_scopes"]  # the owner's grant lacks it
    assert "held_scopes" not in owners and "credential" not in owners
    # Anyone else: a stranger, a collaborator granted All on another app of the owner,
    # another app's API key; and an unknown id: all alike.
    stranger = server.create_user(new_id())
    _, _, other_guest, _ = add_collaborator(server, client, owner_pat, ["All"])
    unknown = _denial(server, "sg-00000000-1", stranger)
    assert unknown[0] == codes.CONN_DOES_NOT_EXIST
    for secret in (stranger, other_guest):
        assert _denial(server, req_id, secret) == unknown
    made = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[R.App(id=new_id("a"))]),
            metadata=client.auth(owner_pat),
        )
    )
    app_key = made.apps[0].metadata["default_api_key"]
    code, denial = _denial(server, req_id, app_key)
    assert code != codes.SUCCESS and denial == {}
    # An organization's admin reads refusals on the organization's apps.
    org_id = new_id("org")
    call(server, "POST", ORGS, owner_pat, {"id": org_id})
    org_app = _app(client, owner_pat, org_id)
    hidden = _list_concepts(client, stranger, org_id, org_app)
    code, seen = _denial(server, hidden.status.req_id, owner_pat)
    assert code == codes.SUCCESS and seen["target"]["user_id"] == org_id


def test_cli_explains_a_refusal_once_written(server, user):
    from tests.support.clients import make_stub

    owner, owner_pat = user
    client = Client("grpc", make_stub(server, "grpc"))
    app_id = _app(client, owner_pat)
    reader = _pat(client, owner_pat, ["Apps_Get"])
    req_id = _list_concepts(client, reader, owner, app_id).status.req_id
    deadline = time.monotonic() + 15  # written with the last-use times (every 5 s)
    while True:
        result = server.cli("explain", req_id, "--json")
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["layer"] == "scopes" and "Concepts_Get" in shown["missing_scopes"]
    assert reader not in result.stdout
    text = server.cli("explain", req_id)
    assert "Fix: Add the missing scopes" in text.stdout.replace("\n", " ")
    missing = server.cli("explain", "sg-nothing-1")
    assert missing.returncode == 1 and "No refusal recorded" in missing.stderr


def test_records_are_bounded_by_age_and_count(services):
    from scopegate.store import refusals
    from scopegate.store.refusals import RefusalRecord

    now = datetime.now(UTC)

    def record(i: int, age_days: float) -> RefusalRecord:
        return RefusalRecord(
            f"sg-test-{i}", now - timedelta(days=age_days), "GetApp", "u", "a", "c", "", "",
            "", "relation", 11101, "Resource does not exist", "", (), (), (),
        )  # fmt: skip

    with services.engine.begin() as conn:
        rows = [refusals.row(record(i, age)) for i, age in ((1, 8), (2, 2), (3, 1), (4, 0))]
        refusals.insert_many(conn, rows)
        assert refusals.purge(conn, now - timedelta(days=7), keep_at_most=2) == 2
        assert refusals.get(conn, "sg-test-1") is None  # past the 7 days
        assert refusals.get(conn, "sg-test-2") is None  # beyond the capacity: the oldest
        kept = refusals.get(conn, "sg-test-4")
        assert kept is not None and kept.at == now  # to the microsecond, as written
