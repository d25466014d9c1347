"""Leaked-secret reports (issue 14, part 3) against a real server on both databases:
GitHub's secret scanning partner endpoint (ECDSA P-256 signatures by the keys configured in
SCOPEGATE_SECRET_SCANNING_KEYS), GitLab's revocation contract (the bearer token in
SCOPEGATE_REVOCATION_TOKEN) and `scopegate keys revoke-leaked -`. A secret of ours is
revoked at once on both transports; unsigned, badly signed or unauthorized reports do
nothing (401). Expectations from the README ("Leaked secrets")."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.api import PASSWORD, login, me, ok
from tests.support.clients import make_stub, new_id
from tests.support.server_process import ServerProcess
from tests.support.servers import BACKENDS, SERVER_ENV

GITHUB = "/scopegate/v1/secret-scanning/github"
TYPES = "/scopegate/v1/revocation/revocable_token_types"
REVOKE = "/scopegate/v1/revocation/revoke_tokens"
BEARER = "gitlab-" + uuid.uuid4().hex
KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"


def _pem(private: ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


SIGNING = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())  # not configured: an impostor's
RETIRED = ec.generate_private_key(ec.SECP256R1())  # configured under "old", not current


def _sign(body: bytes, key: ec.EllipticCurvePrivateKey = SIGNING) -> str:
    return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp(f"leaks-{request.param}")
    keys_file = data_dir / "github-keys.json"
    keys_file.write_text(
        json.dumps(
            {
                "public_keys": [
                    {"key_identifier": "old", "key": _pem(RETIRED), "is_current": False},
                    {"key_identifier": KEY_ID, "key": _pem(SIGNING), "is_current": True},
                ]
            }
        )
    )
    url = None
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"sg_{uuid.uuid4().hex[:12]}")
    env = {
        **SERVER_ENV,
        "SCOPEGATE_SECRET_SCANNING_KEYS": str(keys_file),
        "SCOPEGATE_REVOCATION_TOKEN": BEARER,
    }
    process = ServerProcess(data_dir=data_dir, database_url=url, extra_env=env).start()
    yield process
    assert process.stop() == 0, process.log()


def _report(server, items, *, key=SIGNING, key_id=KEY_ID, body: bytes | None = None, sign=True):
    body = body if body is not None else json.dumps(items).encode()
    headers = {"content-type": "application/json"}
    if sign:
        headers["Github-Public-Key-Identifier"] = key_id
        headers["Github-Public-Key-Signature"] = _sign(body, key)
    return requests.post(server.http_url + GITHUB, data=body, headers=headers, timeout=30)


def _works(server, secret: str) -> tuple[int, int]:
    """GetUser with `secret` over gRPC and REST: both status codes."""
    stub = make_stub(server, "grpc")
    grpc_code = stub.GetUser(
        service_pb2.GetUserRequest(user_app_id=me()), metadata=(("authorization", f"Key {secret}"),)
    ).status.code
    reply = requests.get(
        server.http_url + "/v2/users/me", headers={"authorization": f"Key {secret}"}, timeout=30
    )
    return grpc_code, reply.json()["status"]["code"]


ALIVE = (codes.SUCCESS, codes.SUCCESS)
DEAD = (codes.CONN_KEY_INVALID, codes.CONN_KEY_INVALID)


def _app_key(server, pat: str) -> str:
    stub = make_stub(server, "grpc")
    made = ok(
        stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[resources_pb2.App(id=new_id("a"))]),
            metadata=(("authorization", f"Key {pat}"),),
        )
    )
    return made.apps[0].metadata["default_api_key"]


def _audit(server, pat: str) -> list[str]:
    stub = make_stub(server, "json")
    entries = ok(
        stub.PostAuditLogSearches(
            service_pb2.PostAuditLogSearchesRequest(user_app_id=me()),
            metadata=(("authorization", f"Key {pat}"),),
        )
    ).entries
    return [f"{e.description} {e.details}" for e in entries]


def test_github_report_revokes_ours_at_once_and_says_only_the_label(server):
    owner = new_id()
    pat = server.create_user(owner)
    spare = server.create_user(new_id())  # not reported: keeps working
    leaked_pat = server.create_user(new_id())
    app_key = _app_key(server, pat)
    assert _works(server, leaked_pat) == ALIVE and _works(server, spare) == ALIVE
    url = "https://github.com/someone/repo/blob/abc/config.py"
    items = [
        {"token": leaked_pat, "type": "scopegate_pat", "url": url, "source": "content"},
        {"token": app_key, "type": "scopegate_key", "url": url, "source": "content"},
        {"token": "sgp_" + "A" * 36, "type": "scopegate_pat", "url": url, "source": "content"},
        {"token": "ghp_notoursatall", "type": "other", "url": url, "source": "commit"},
    ]
    reply = _report(server, items)
    assert reply.status_code == 200, reply.text
    assert reply.json() == [
        {
            "token_hash": hashlib.sha256(i["token"].encode()).hexdigest(),
            "token_type": i["type"],
            "label": label,
        }
        for i, label in zip(
            items,
            ["true_positive", "true_positive", "false_positive", "false_positive"],
            strict=True,
        )
    ]
    assert _works(server, leaked_pat) == DEAD
    stub = make_stub(server, "json")
    refused = stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=resources_pb2.UserAppIDSet()),
        metadata=(("authorization", f"Key {app_key}"),),
    )
    assert refused.status.code == codes.CONN_KEY_INVALID
    assert _works(server, spare) == ALIVE  # only what was reported
    # The owner's audit log names where it leaked.
    events = _audit(server, pat)
    assert any("key.leaked" in e and url in e for e in events), events
    # Reported again: nothing of ours is valid any more, so nothing is a true positive.
    again = _report(server, items[:2])
    assert [r["label"] for r in again.json()] == ["false_positive", "false_positive"]


def test_unsigned_or_badly_signed_reports_do_nothing(server):
    pat = server.create_user(new_id())
    items = [{"token": pat, "type": "scopegate_pat", "url": "https://x", "source": "content"}]
    body = json.dumps(items).encode()
    attempts = [
        _report(server, items, sign=False),
        _report(server, items, key=OTHER),  # an impostor's key under the right identifier
        _report(server, items, key_id="unknown"),
        _report(server, items, key_id="old"),  # a configured key that did not sign it
    ]
    tampered = requests.post(
        server.http_url + GITHUB,
        data=body + b" ",
        headers={
            "Github-Public-Key-Identifier": KEY_ID,
            "Github-Public-Key-Signature": _sign(body),
        },
        timeout=30,
    )
    garbage = requests.post(
        server.http_url + GITHUB,
        data=body,
        headers={"Github-Public-Key-Identifier": KEY_ID, "Github-Public-Key-Signature": "%%%"},
        timeout=30,
    )
    for reply in (*attempts, tampered, garbage):
        assert reply.status_code == 401, reply.text
        assert reply.json()["status"]["details"]
        assert pat not in reply.text
    assert _works(server, pat) == ALIVE
    # Signed but malformed: a 400 naming the shape, nothing revoked.
    for bad in (b"{}", b"not json", json.dumps([{"token": 1}]).encode()):
        reply = _report(server, None, body=bad)
        assert reply.status_code == 400 and "JSON array" in reply.json()["status"]["details"]
    assert _works(server, pat) == ALIVE


def test_a_leaked_session_token_is_ended(server):
    user_id = new_id()
    server.create_user(user_id, password=PASSWORD)
    _, body = login(server, f"{user_id}@example.com")
    session = body["session_token"]
    headers = {"x-clarifai-session-token": session}
    assert requests.get(server.http_url + "/v2/users/me", headers=headers, timeout=30).ok
    reply = _report(server, [{"token": session, "type": "s", "url": "", "source": "content"}])
    assert reply.json()[0]["label"] == "true_positive"
    after = requests.get(server.http_url + "/v2/users/me", headers=headers, timeout=30)
    assert after.json()["status"]["code"] == codes.CONN_KEY_INVALID


def test_gitlab_revocation_contract(server):
    bearer = {"authorization": f"Bearer {BEARER}"}
    types = requests.get(server.http_url + TYPES, headers=bearer, timeout=30)
    assert types.status_code == 200
    assert "scopegate_personal_access_token" in types.json()["types"]
    pat = server.create_user(new_id())
    body = [{"type": "scopegate_personal_access_token", "token": pat, "location": "https://gl/x"}]
    for wrong in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Key {pat}"}):
        assert requests.get(server.http_url + TYPES, headers=wrong, timeout=30).status_code == 401
        refused = requests.post(server.http_url + REVOKE, json=body, headers=wrong, timeout=30)
        assert refused.status_code == 401
    assert _works(server, pat) == ALIVE
    bad = requests.post(server.http_url + REVOKE, json={"token": pat}, headers=bearer, timeout=30)
    assert bad.status_code == 400
    assert _works(server, pat) == ALIVE
    for _ in range(2):  # idempotent
        done = requests.post(server.http_url + REVOKE, json=body, headers=bearer, timeout=30)
        assert done.status_code == 204, done.text
        assert _works(server, pat) == DEAD


def test_cli_revoke_leaked_reads_stdin(server):
    owner = new_id()
    pat = server.create_user(owner)
    leaked = server.create_user(new_id())
    result = server.cli(
        "keys",
        "revoke-leaked",
        "-",
        "--where",
        "https://paste/1",
        "--json",
        input=f"{leaked}\nsgp_{'B' * 36}\n\n",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["given"] == 2 and len(shown["revoked"]) == 1
    assert leaked not in result.stdout and leaked not in result.stderr
    assert _within_bound(lambda: _works(server, leaked), DEAD)
    assert _works(server, pat) == ALIVE
    refused = server.cli("keys", "revoke-leaked", leaked)  # never on the command line
    assert refused.returncode == 2


def test_revocation_requests_are_rate_limited(server):
    """Last in the module: it spends this minute's allowance of the server."""
    bearer = {"authorization": f"Bearer {BEARER}"}
    answers = [
        requests.post(server.http_url + REVOKE, json=[], headers=bearer, timeout=30).status_code
        for _ in range(61)
    ]
    assert answers[0] == 204 and answers[-1] == 429
    limited = requests.post(server.http_url + REVOKE, json=[], headers=bearer, timeout=30)
    assert int(limited.headers["retry-after"]) >= 1


def _within_bound(read, wanted, bound: float = 1.0) -> bool:
    import time

    deadline = time.monotonic() + bound
    while read() != wanted:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
