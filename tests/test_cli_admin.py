"""The admin CLI for credentials: `scopegate keys|apps|audit`, against a running server."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.cli import cli, cli_json, new_user, one_error_line
from tests.support.clients import new_id
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One SQLite server for the module; the CLI writes to its database while it runs."""
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("scopegate-cli-admin"), database_url=None
    ).start()
    yield process
    assert process.stop() == 0, process.log()


def me_status(server: ServerProcess, secret: str) -> int:
    request = urllib.request.Request(
        f"{server.http_url}/v2/users/me", headers={"authorization": f"Key {secret}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def eventually_status(server: ServerProcess, secret: str, expected: int) -> int:
    """The server polls the change log every 0.25 s: allow it up to 2 s to catch up."""
    deadline = time.monotonic() + 2.0
    while True:
        status = me_status(server, secret)
        if status == expected or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_keys_create_list_patch_delete(server):
    user, pat = new_user(server)
    made = cli_json(
        server,
        "keys",
        "create",
        "--user",
        user,
        "--description",
        "ci",
        "--scope",
        "Inputs:Get",
        "--scope",
        "Models_Get",
    )
    secret, public_id = made["secret"], made["id"]
    assert secret.startswith("sgp_") and len(public_id) == 32
    assert {"Inputs_Get", "Models_Get"} <= set(made["scopes"])
    assert made["masked"] == f"sgp_…{secret[-4:]}"

    listed = cli_json(server, "keys", "list", "--user", user)
    assert {k["id"] for k in listed["keys"]} >= {public_id}
    assert secret not in json.dumps(listed)
    mine = next(k for k in listed["keys"] if k["id"] == public_id)
    assert mine["description"] == "ci" and mine["masked"] == made["masked"]

    table = cli(server, "keys", "list", "--user", user, "--type", "personal_access_token")
    assert table.returncode == 0, table.stderr
    assert public_id in table.stdout and made["masked"] in table.stdout
    assert secret not in table.stdout and secret[4:-4] not in table.stdout

    # Overwrite only what is given; name the key by its secret this time.
    patched = cli_json(server, "keys", "patch", secret, "--user", user, "--expires-in-days", "3")
    assert patched["id"] == public_id and patched["description"] == "ci"
    assert patched["expires_at"] and set(patched["scopes"]) == set(made["scopes"])
    patched = cli_json(
        server, "keys", "patch", public_id, "--user", user, "--scope", "Inputs_Add",
        "--description", "ci2", "--no-expiry",
    )  # fmt: skip
    assert patched["description"] == "ci2" and patched["expires_at"] is None
    assert "Inputs_Add" in patched["scopes"] and "Models_Get" not in patched["scopes"]

    other, _ = new_user(server)
    refused = cli(server, "keys", "delete", public_id, "--user", other)
    assert "No such key" in one_error_line(refused, 1)

    assert me_status(server, secret) == 200  # cached by the server until the delete
    assert cli_json(server, "keys", "delete", public_id, "--user", user) == {
        "id": public_id,
        "deleted": True,
    }
    assert eventually_status(server, secret, 401) == 401
    listed = cli_json(server, "keys", "list", "--user", user)
    assert public_id not in {k["id"] for k in listed["keys"]}
    assert "No such key" in one_error_line(
        cli(server, "keys", "delete", public_id, "--user", user), 1
    )
    assert me_status(server, pat) == 200  # the user's other keys are untouched


def test_usage_errors(server):
    user, _ = new_user(server)
    unknown = cli(server, "keys", "create", "--user", user, "--scope", "Inputs_Get,Nope_Nope")
    line = one_error_line(unknown, 2)
    assert "Unknown scopes: Nope_Nope" in line and "Valid scopes:" in line and "Inputs_Get" in line
    assert "needs --app" in one_error_line(
        cli(server, "keys", "create", "--user", user, "--type", "app_specific_key"), 2
    )
    assert "--grace-seconds" in one_error_line(
        cli(server, "keys", "roll", "x", "--user", user, "--grace-seconds", "-1"), 2
    )
    assert "Nothing to change" in one_error_line(
        cli(server, "keys", "patch", "x", "--user", user), 2
    )
    assert "No user" in one_error_line(cli(server, "keys", "list", "--user", new_id()), 1)
    # An app key needs an app of that user.
    other, _ = new_user(server)
    cli_json(server, "apps", "create", "theirs", "--user", other)
    foreign = cli(
        server, "keys", "create", "--user", user, "--type", "app_specific_key", "--app", "theirs"
    )
    assert "no app 'theirs'" in one_error_line(foreign, 1)


def test_roll_without_grace_ends_the_old_secret(server):
    user, _ = new_user(server)
    made = cli_json(server, "keys", "create", "--user", user)
    old = made["secret"]
    assert me_status(server, old) == 200  # now cached by the server
    rolled = cli_json(server, "keys", "roll", made["id"], "--user", user)
    new = rolled["secret"]
    assert rolled["id"] == made["id"] and new != old and rolled["masked"].endswith(new[-4:])
    assert me_status(server, new) == 200
    assert eventually_status(server, old, 401) == 401


def test_roll_with_grace_keeps_both(server):
    user, _ = new_user(server)
    made = cli_json(server, "keys", "create", "--user", user)
    old = made["secret"]
    assert me_status(server, old) == 200
    rolled = cli_json(server, "keys", "roll", old, "--user", user, "--grace-seconds", "60")
    time.sleep(0.6)  # past a change-log poll
    assert me_status(server, rolled["secret"]) == 200
    assert me_status(server, old) == 200
    # As text: the new secret alone on the last line, to copy.
    text = cli(server, "keys", "roll", made["id"], "--user", user)
    assert text.returncode == 0, text.stderr
    assert "shown once" in text.stdout and text.stdout.strip().splitlines()[-1].startswith("sgp_")


def test_import_legacy_key_from_stdin_then_use_it(server):
    user, _ = new_user(server)
    legacy = secrets.token_hex(16)
    imported = cli_json(
        server, "keys", "import", "-", "--user", user, "--description", "old", input=legacy + "\n"
    )
    assert imported["masked"].endswith(legacy[-4:]) and legacy not in json.dumps(imported)
    assert imported["description"] == "old" and imported["scopes"] == ["All"]
    assert eventually_status(server, legacy, 200) == 200
    again = cli(server, "keys", "import", legacy, "--user", user)
    assert "imported already" in one_error_line(again, 1)
    bad = cli(server, "keys", "import", "-", "--user", user, input="not-a-key\n")
    assert "original format" in one_error_line(bad, 1)
    # The imported secret names its key, like any secret.
    cli_json(server, "keys", "delete", legacy, "--user", user)
    assert eventually_status(server, legacy, 401) == 401


def test_apps_create_list_delete(server):
    user, _ = new_user(server)
    created = cli_json(
        server, "apps", "create", "shop", "--user", user, "--description", "d",
        "--visibility", "org",
    )  # fmt: skip
    default_key = created["default_api_key"]
    assert created["id"] == "shop" and created["visibility"] == "org"
    assert default_key.startswith("sgk_")
    assert "already exists" in one_error_line(
        cli(server, "apps", "create", "shop", "--user", user), 1
    )

    listed = cli_json(server, "apps", "list", "--user", user)
    assert [a["id"] for a in listed["apps"]] == ["shop"]
    table = cli(server, "apps", "list", "--user", user)
    assert table.returncode == 0 and "shop" in table.stdout

    app_keys = cli_json(server, "keys", "list", "--user", user, "--app", "shop")["keys"]
    assert len(app_keys) == 1 and app_keys[0]["type"] == "app_specific_key"
    made = cli_json(
        server, "keys", "create", "--user", user, "--type", "app_specific_key", "--app", "shop"
    )
    assert made["secret"].startswith("sgk_") and made["app"] == "shop"

    deleted = cli_json(server, "apps", "delete", "shop", "--user", user)
    assert deleted["deleted"] and set(deleted["keys_deleted"]) == {app_keys[0]["id"], made["id"]}
    assert cli_json(server, "apps", "list", "--user", user)["apps"] == []
    remaining = cli_json(server, "keys", "list", "--user", user)["keys"]
    assert [k["type"] for k in remaining] == ["personal_access_token"]
    assert "no app 'shop'" in one_error_line(
        cli(server, "apps", "delete", "shop", "--user", user), 1
    )


def test_audit_lists_actions_newest_first_without_secrets(server):
    user, pat = new_user(server)
    made = cli_json(server, "keys", "create", "--user", user)
    cli_json(server, "keys", "patch", made["id"], "--user", user, "--description", "x")
    rolled = cli_json(server, "keys", "roll", made["id"], "--user", user)
    legacy = secrets.token_hex(16)
    cli_json(server, "keys", "import", legacy, "--user", user)
    app = cli_json(server, "apps", "create", "a1", "--user", user)
    cli_json(server, "apps", "delete", "a1", "--user", user)
    cli_json(server, "keys", "delete", made["id"], "--user", user)
    shown = [pat, made["secret"], rolled["secret"], legacy, app["default_api_key"]]

    events = cli_json(server, "audit", "--user", user)["events"]
    actions = [e["action"] for e in events]
    assert actions[0] == "key.delete" and actions[-1] == "user.create"
    for action in ("key.create", "key.patch", "key.roll", "key.import", "app.create", "app.delete"):
        assert action in actions
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    assert {e["actor_user_id"] for e in events} == {user}
    assert all(e["credential_kind"] == "cli" for e in events)
    assert f"key:{made['id']}" in {e["target"] for e in events}

    table = cli(server, "audit", "--user", user)
    assert table.returncode == 0 and "key.roll" in table.stdout and made["id"] in table.stdout
    everything = cli(server, "audit", "--limit", "1000")
    for output in (json.dumps(events), table.stdout, everything.stdout):
        assert not any(secret in output for secret in shown)

    rolls = cli_json(server, "audit", "--user", user, "--action", "key.roll")["events"]
    assert [e["action"] for e in rolls] == ["key.roll"]
    other, _ = new_user(server)
    all_users = cli_json(server, "audit", "--action", "user.create", "--limit", "1000")["events"]
    assert {user, other} <= {e["actor_user_id"] for e in all_users}
    assert len(cli_json(server, "audit", "--limit", "2")["events"]) == 2
