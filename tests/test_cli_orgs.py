"""`scopegate orgs`: organizations, members and teams from the command line, against a
running server that sees every change through the change log within the revocation bound."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import http, me
from tests.support.cli import cli, cli_json, new_user, one_error_line
from tests.support.clients import make_stub, new_id
from tests.support.server_process import ServerProcess

BOUND_SECONDS = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One SQLite server for the module; the CLI writes to its database while it runs."""
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("scopegate-cli-orgs"), database_url=None
    ).start()
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def stub(server):
    """The official client's gRPC stub."""
    return make_stub(server, "grpc")


def _auth(secret: str):
    return (("authorization", f"Key {secret}"),)


def get_app(stub, secret: str, org_id: str, app_id: str):
    return stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(user_id=org_id, app_id=app_id)),
        metadata=_auth(secret),
    )


def post_concepts(stub, secret: str, org_id: str, app_id: str):
    return stub.PostConcepts(
        service_pb2.PostConceptsRequest(
            user_app_id=me(user_id=org_id, app_id=app_id),
            concepts=[resources_pb2.Concept(id=new_id("c"))],
        ),
        metadata=_auth(secret),
    )


def within_bound(call: Callable, expected: int, since: float) -> int:
    """Repeat `call` until it answers `expected`, for up to BOUND_SECONDS after `since`
    (when the CLI had committed); the last status code."""
    while True:
        code = call().status.code
        if code == expected or time.monotonic() - since > BOUND_SECONDS:
            return code
        time.sleep(0.02)


def new_org(server, admin: str, *apps: str) -> str:
    org_id = new_id("org")
    cli_json(server, "orgs", "create", org_id, "--admin", admin)
    for app_id in apps:
        cli_json(server, "apps", "create", app_id, "--user", org_id)
    return org_id


def test_create_list_show_delete(server, stub):
    admin, admin_pat = new_user(server)
    outsider, _ = new_user(server)
    org_id = new_id("org")
    created = cli_json(server, "orgs", "create", org_id, "--admin", admin, "--name", "Acme Labs")
    assert created["admin"] == admin
    assert created["organization"]["id"] == org_id
    assert created["organization"]["name"] == "Acme Labs"
    assert created["organization"]["created_at"]
    # The server sees it at once: the admin's organizations, through the SDK's route.
    status, body = http(
        server, "GET", "/v2/users/me/organizations", headers={"authorization": f"Key {admin_pat}"}
    )
    assert status == 200, body
    assert [(o["id"], o["role"]["id"]) for o in body["organizations"]] == [(org_id, "admin")]

    listed = cli_json(server, "orgs", "list")["organizations"]
    assert {"id": org_id, "name": "Acme Labs"}.items() <= next(
        o for o in listed if o["id"] == org_id
    ).items()
    table = cli(server, "orgs", "list")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if org_id in line)
    assert "Acme Labs" in row and "│ 1 " in row  # one member

    mine = cli_json(server, "orgs", "list", "--user", admin)
    assert mine["user_id"] == admin
    assert [(o["id"], o["role"]) for o in mine["organizations"]] == [(org_id, {"id": "admin"})]
    table = cli(server, "orgs", "list", "--user", admin)
    assert table.returncode == 0 and f"Organizations of {admin}" in table.stdout
    assert "admin" in next(line for line in table.stdout.splitlines() if org_id in line)
    assert cli_json(server, "orgs", "list", "--user", outsider)["organizations"] == []
    empty = cli(server, "orgs", "list", "--user", outsider)
    assert f"User {outsider} belongs to no organization." in empty.stdout

    shown = cli_json(server, "orgs", "show", org_id)
    assert shown["organization"]["id"] == org_id and shown["teams"] == []
    assert [(m["user_id"], m["email"], m["role"]) for m in shown["members"]] == [
        (admin, f"{admin}@example.com", "admin")
    ]
    table = cli(server, "orgs", "show", org_id)
    assert table.returncode == 0, table.stderr
    assert f"Organization {org_id} (Acme Labs), created " in table.stdout
    assert f"{admin}@example.com" in table.stdout and "No teams." in table.stdout

    app = cli_json(server, "apps", "create", "shop", "--user", org_id)
    app_key = app["default_api_key"]
    key_id = cli_json(server, "keys", "list", "--user", org_id)["keys"][0]["id"]
    with_app_key = lambda: stub.GetApp(service_pb2.GetAppRequest(), metadata=_auth(app_key))  # noqa: E731
    assert with_app_key().status.code == codes.SUCCESS  # now cached by the server

    # Without --yes it asks (on stderr); "no" keeps everything.
    kept = cli(server, "orgs", "delete", org_id, input="n\n")
    assert kept.returncode == 1 and "with its 1 app(s)" in kept.stderr
    assert cli_json(server, "orgs", "show", org_id)["organization"]["id"] == org_id

    deleted = cli_json(server, "orgs", "delete", org_id, "--yes")
    since = time.monotonic()
    assert deleted == {
        "id": org_id,
        "deleted": True,
        "apps_deleted": ["shop"],
        "keys_deleted": [key_id],
    }
    assert within_bound(with_app_key, codes.CONN_KEY_INVALID, since) == codes.CONN_KEY_INVALID
    assert f"No organization '{org_id}'" in one_error_line(cli(server, "orgs", "show", org_id), 1)
    assert org_id not in {o["id"] for o in cli_json(server, "orgs", "list")["organizations"]}
    assert cli_json(server, "orgs", "list", "--user", admin)["organizations"] == []

    # As text; and the id is free again, with nobody left from before.
    recreated = cli_json(server, "orgs", "create", org_id, "--admin", outsider)
    assert recreated["organization"]["name"] == org_id  # the name defaults to the id
    assert [m["user_id"] for m in cli_json(server, "orgs", "show", org_id)["members"]] == [outsider]
    text = cli(server, "orgs", "delete", org_id, "--yes")
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip() == f"Deleted organization {org_id}, its 0 app(s) and 0 key(s)."


def test_members_added_by_the_cli_use_their_own_pat_and_lose_it_on_removal(server, stub):
    admin, _ = new_user(server)
    org_id = new_org(server, admin, "vision")
    member, member_pat = new_user(server)
    # An outsider now: the server caches that too.
    assert get_app(stub, member_pat, org_id, "vision").status.code == codes.CONN_DOES_NOT_EXIST

    added = cli_json(
        server, "orgs", "members", "add", org_id, "--user", member, "--role", "org_user"
    )
    since = time.monotonic()
    assert added["org_id"] == org_id
    assert {k: added["member"][k] for k in ("user_id", "email", "role")} == {
        "user_id": member,
        "email": f"{member}@example.com",
        "role": "org_user",
    }
    assert within_bound(lambda: get_app(stub, member_pat, org_id, "vision"), 10000, since) == 10000
    refused = post_concepts(stub, member_pat, org_id, "vision")
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert "Concepts_Add" in refused.status.details

    text = cli(server, "orgs", "members", "set-role", org_id, member, "ORG_CONTRIBUTOR")
    since = time.monotonic()
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip() == f"{member} is now org_contributor in {org_id}."
    assert (
        within_bound(lambda: post_concepts(stub, member_pat, org_id, "vision"), 10000, since)
        == 10000
    )
    roles = {m["user_id"]: m["role"] for m in cli_json(server, "orgs", "show", org_id)["members"]}
    assert roles == {admin: "admin", member: "org_contributor"}
    assert cli_json(server, "orgs", "members", "set-role", org_id, member, "org_user") == {
        "org_id": org_id,
        "user_id": member,
        "role": "org_user",
    }
    since = time.monotonic()
    assert (
        within_bound(lambda: post_concepts(stub, member_pat, org_id, "vision"), 11007, since)
        == codes.CONN_INSUFFICIENT_SCOPES
    )

    assert get_app(stub, member_pat, org_id, "vision").status.code == codes.SUCCESS  # cached
    removed = cli_json(server, "orgs", "members", "remove", org_id, member)
    since = time.monotonic()
    assert removed == {"org_id": org_id, "user_id": member, "removed": True}
    assert (
        within_bound(lambda: get_app(stub, member_pat, org_id, "vision"), 11101, since)
        == codes.CONN_DOES_NOT_EXIST
    )
    assert cli_json(server, "orgs", "list", "--user", member)["organizations"] == []

    # By email, as text; removal as text.
    text = cli(server, "orgs", "members", "add", org_id, "--email", f"{member}@example.com",
               "--role", "admin")  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip() == f"Added {member} to {org_id} as admin."
    text = cli(server, "orgs", "members", "remove", org_id, admin)  # another admin remains
    assert text.stdout.strip() == f"Removed {admin} from {org_id}."

    # Every change is audited under the organization, as done by the CLI.
    events = cli_json(server, "audit", "--user", org_id)["events"]
    actions = [e["action"] for e in events]
    for action in ("org.create", "org.member.add", "org.member.patch", "org.member.remove"):
        assert action in actions
    assert {e["credential_kind"] for e in events} == {"cli"}


def test_teams_create_patch_delete(server, stub):
    admin, _ = new_user(server)
    org_id = new_org(server, admin, "a1", "a2")
    member, member_pat = new_user(server)
    cli_json(server, "orgs", "members", "add", org_id, "--user", member, "--role",
             "team_contributor")  # fmt: skip
    assert get_app(stub, member_pat, org_id, "a1").status.code == codes.CONN_DOES_NOT_EXIST

    made = cli_json(server, "orgs", "teams", "create", org_id, "vision", "--role", "contributor",
                    "--app", "a1", "--member", member)  # fmt: skip
    since = time.monotonic()
    assert made == {
        "org_id": org_id,
        "team": {
            "id": "vision",
            "name": "vision",
            "role": "contributor",
            "app_ids": ["a1"],
            "user_ids": [member],
        },
    }
    assert within_bound(lambda: get_app(stub, member_pat, org_id, "a1"), 10000, since) == 10000
    assert post_concepts(stub, member_pat, org_id, "a1").status.code == codes.SUCCESS
    assert get_app(stub, member_pat, org_id, "a2").status.code == codes.CONN_DOES_NOT_EXIST
    again = cli(server, "orgs", "teams", "create", org_id, "vision")
    assert "already exists" in one_error_line(again, 1)

    # Overwrite the role, the name and the apps (comma-separated); members are kept.
    text = cli(server, "orgs", "teams", "patch", org_id, "vision", "--role", "user",
               "--name", "Vision team", "--app", "a1,a2")  # fmt: skip
    since = time.monotonic()
    assert text.returncode == 0, text.stderr
    assert f"Updated team vision in {org_id}." in text.stdout
    row = next(line for line in text.stdout.splitlines() if "vision" in line and "│" in line)
    assert "Vision team" in row and "a1, a2" in row and member in row and "user" in row
    assert within_bound(lambda: get_app(stub, member_pat, org_id, "a2"), 10000, since) == 10000
    assert (
        within_bound(lambda: post_concepts(stub, member_pat, org_id, "a1"), 11007, since)
        == codes.CONN_INSUFFICIENT_SCOPES
    )
    shown = cli(server, "orgs", "show", org_id)
    assert "Vision team" in shown.stdout and "a1, a2" in shown.stdout

    patched = cli_json(server, "orgs", "teams", "patch", org_id, "vision", "--no-apps")
    since = time.monotonic()
    assert patched["team"]["app_ids"] == [] and patched["team"]["user_ids"] == [member]
    assert (
        within_bound(lambda: get_app(stub, member_pat, org_id, "a1"), 11101, since)
        == codes.CONN_DOES_NOT_EXIST
    )
    cli_json(server, "orgs", "teams", "patch", org_id, "vision", "--app", "a1")
    patched = cli_json(server, "orgs", "teams", "patch", org_id, "vision", "--no-members")
    assert patched["team"] == {
        "id": "vision",
        "name": "Vision team",
        "role": "user",
        "app_ids": ["a1"],
        "user_ids": [],
    }
    # Removing a member from the organization takes them out of its teams.
    cli_json(server, "orgs", "teams", "patch", org_id, "vision", "--member", member)
    cli_json(server, "orgs", "members", "remove", org_id, member)
    assert cli_json(server, "orgs", "show", org_id)["teams"][0]["user_ids"] == []

    assert cli_json(server, "orgs", "teams", "delete", org_id, "vision") == {
        "org_id": org_id,
        "id": "vision",
        "deleted": True,
    }
    assert cli_json(server, "orgs", "show", org_id)["teams"] == []
    assert "No team 'vision'" in one_error_line(
        cli(server, "orgs", "teams", "delete", org_id, "vision"), 1
    )
    cli_json(server, "orgs", "teams", "create", org_id, "t2")  # defaults: role user, nothing in
    text = cli(server, "orgs", "teams", "delete", org_id, "t2")
    assert text.returncode == 0 and text.stdout.strip() == f"Deleted team t2 of {org_id}."


def test_apps_made_and_unmade_by_the_cli_reach_members_within_the_bound(server, stub):
    admin, _ = new_user(server)
    org_id = new_org(server, admin, "a1")
    member, member_pat = new_user(server)
    cli_json(server, "orgs", "members", "add", org_id, "--user", member, "--role",
             "team_contributor")  # fmt: skip
    cli_json(server, "orgs", "teams", "create", org_id, "t", "--app", "a1", "--member", member)
    since = time.monotonic()
    assert within_bound(lambda: get_app(stub, member_pat, org_id, "a1"), 10000, since) == 10000
    # A new app with the old id is not the team's app.
    cli_json(server, "apps", "delete", "a1", "--user", org_id)
    cli_json(server, "apps", "create", "a1", "--user", org_id)
    since = time.monotonic()
    assert (
        within_bound(lambda: get_app(stub, member_pat, org_id, "a1"), 11101, since)
        == codes.CONN_DOES_NOT_EXIST
    )
    # Asked for before it exists, an app is readable by every member once made ORG-visible.
    assert get_app(stub, member_pat, org_id, "a2").status.code == codes.CONN_DOES_NOT_EXIST
    cli_json(server, "apps", "create", "a2", "--user", org_id, "--visibility", "org")
    since = time.monotonic()
    assert within_bound(lambda: get_app(stub, member_pat, org_id, "a2"), 10000, since) == 10000


def test_organizations_have_no_pats_but_get_app_keys(server, stub):
    admin, _ = new_user(server)
    org_id = new_org(server, admin, "a1")
    for extra in ((), ("--type", "personal_access_token")):
        refused = cli(server, "keys", "create", "--user", org_id, *extra)
        line = one_error_line(refused, 1)
        assert "An organization has no Personal Access Tokens: members use their own." in line
        assert "sgp_" not in refused.stdout
    imported = cli(server, "keys", "import", "-", "--user", org_id, input="ab" * 16 + "\n")
    assert "no Personal Access Tokens" in one_error_line(imported, 1)
    assert [k["type"] for k in cli_json(server, "keys", "list", "--user", org_id)["keys"]] == [
        "app_specific_key"
    ]
    made = cli_json(server, "keys", "create", "--user", org_id, "--type", "app_specific_key",
                    "--app", "a1", "--scope", "Apps_Get,Workflows_Get")  # fmt: skip
    assert made["secret"].startswith("sgk_") and made["app"] == "a1"
    reply = stub.GetApp(service_pb2.GetAppRequest(), metadata=_auth(made["secret"]))
    assert reply.status.code == codes.SUCCESS and reply.app.id == "a1"


def test_bad_input_is_one_line_without_traceback(server):
    admin, _ = new_user(server)
    other, _ = new_user(server)
    org_id = new_org(server, admin)
    ghost, no_org = new_id(), new_id("org")

    # Unknown roles: usage errors listing the valid ones.
    line = one_error_line(
        cli(server, "orgs", "members", "add", org_id, "--user", other, "--role", "boss"), 2
    )
    assert "'boss'" in line and "org_contributor" in line and "infrastructure_manager" in line
    line = one_error_line(cli(server, "orgs", "members", "set-role", org_id, admin, "chief"), 2)
    assert "'chief'" in line and "financial_manager" in line
    line = one_error_line(cli(server, "orgs", "teams", "create", org_id, "t", "--role", "x"), 2)
    assert "'contributor'" in line and "'user'" in line

    # Unknown organizations.
    for args in (
        ("show", no_org),
        ("delete", no_org, "--yes"),
        ("members", "add", no_org, "--user", other, "--role", "org_user"),
        ("members", "set-role", no_org, other, "admin"),
        ("members", "remove", no_org, other),
        ("teams", "create", no_org, "t"),
        ("teams", "patch", no_org, "t", "--name", "n"),
        ("teams", "delete", no_org, "t"),
    ):
        assert f"No organization '{no_org}'." in one_error_line(cli(server, "orgs", *args), 1)
    # A user is not an organization.
    assert f"No organization '{admin}'." in one_error_line(cli(server, "orgs", "show", admin), 1)

    # Unknown users.
    no_user = "No user with that id or email; they must sign up first."
    for args in (
        ("create", new_id("org"), "--admin", ghost),
        ("create", new_id("org"), "--admin", org_id),  # an organization is nobody
        ("members", "add", org_id, "--user", ghost, "--role", "org_user"),
        ("members", "add", org_id, "--email", f"{ghost}@example.com", "--role", "org_user"),
    ):
        assert no_user in one_error_line(cli(server, "orgs", *args), 1)
    assert f"No user '{ghost}'." in one_error_line(cli(server, "orgs", "list", "--user", ghost), 1)
    assert f"{other} is not a member of '{org_id}'." in one_error_line(
        cli(server, "orgs", "members", "set-role", org_id, other, "admin"), 1
    )
    assert f"{other} is not a member of '{org_id}'." in one_error_line(
        cli(server, "orgs", "members", "remove", org_id, other), 1
    )
    assert "add them first" in one_error_line(
        cli(server, "orgs", "teams", "create", org_id, "t", "--member", other), 1
    )
    assert f"Organization '{org_id}' has no app 'nope'." in one_error_line(
        cli(server, "orgs", "teams", "create", org_id, "t", "--app", "nope"), 1
    )

    # Ids, duplicates, the last admin, and options that do not go together.
    assert "is taken" in one_error_line(cli(server, "orgs", "create", other, "--admin", admin), 1)
    assert "is taken" in one_error_line(cli(server, "orgs", "create", org_id, "--admin", admin), 1)
    assert "is not valid" in one_error_line(
        cli(server, "orgs", "create", "bad id", "--admin", admin), 1
    )
    assert "already a member" in one_error_line(
        cli(server, "orgs", "members", "add", org_id, "--user", admin, "--role", "admin"), 1
    )
    assert "last admin" in one_error_line(
        cli(server, "orgs", "members", "remove", org_id, admin), 1
    )
    assert "last admin" in one_error_line(
        cli(server, "orgs", "members", "set-role", org_id, admin, "org_user"), 1
    )
    assert "--user or --email" in one_error_line(
        cli(server, "orgs", "members", "add", org_id, "--role", "org_user"), 2
    )
    assert "not both" in one_error_line(
        cli(server, "orgs", "teams", "patch", org_id, "t", "--app", "a", "--no-apps"), 2
    )
    assert "Nothing to change" in one_error_line(
        cli(server, "orgs", "teams", "patch", org_id, "t"), 2
    )
    # Nothing of that was written.
    shown = cli_json(server, "orgs", "show", org_id)
    assert [(m["user_id"], m["role"]) for m in shown["members"]] == [(admin, "admin")]
    assert shown["teams"] == []
    assert json.dumps(shown).count(other) == 0
