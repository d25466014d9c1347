"""Passwords under attack, on the real server: the login throttle counts an attempt before
its password is checked, so concurrent guesses cannot outrun it; the password policy
refuses common and guessable passwords, however they are spelled."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import me, ok
from tests.support.clients import make_stub, new_id
from tests.support.server_process import ServerProcess

PASSWORD = "tr0ub4dor&3xyz"
ACCOUNT_LIMIT = 5  # login.py's default per-account limit


def login_from(server: ServerProcess, source: str, email: str, password: str) -> int:
    """The status code of one `POST /v2/login` sent from loopback address `source`."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.http_port, timeout=60, source_address=(source, 0)
    )
    try:
        body = json.dumps({"email": email, "password": password})
        connection.request("POST", "/v2/login", body, {"content-type": "application/json"})
        return json.loads(connection.getresponse().read())["status"]["code"]
    finally:
        connection.close()


def test_concurrent_wrong_logins_check_at_most_the_limit(server: ServerProcess):
    user_id = new_id()
    pat = server.create_user(user_id, password=PASSWORD)
    email = f"{user_id}@example.com"
    # 40 addresses (Linux routes all of 127/8 to `lo`), so only the account limit applies.
    sources = [f"127.0.12.{n}" for n in range(2, 42)]
    start = threading.Barrier(len(sources))
    answers: list[int] = []

    def guess(source: str) -> None:
        start.wait()
        answers.append(login_from(server, source, email, f"wrong password {source}"))

    threads = [threading.Thread(target=guess, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    counted = Counter(answers)
    assert set(counted) <= {codes.CONN_CREDENTIALS_INVALID, codes.CONN_THROTTLED}, counted
    assert counted[codes.CONN_CREDENTIALS_INVALID] == ACCOUNT_LIMIT, counted
    # Passwords actually checked: each wrong one leaves a `login.failed` audit event.
    stub = make_stub(server, "grpc")
    entries = ok(
        stub.PostAuditLogSearches(
            service_pb2.PostAuditLogSearchesRequest(user_app_id=me()),
            metadata=(("authorization", f"Key {pat}"),),
        )
    ).entries
    failed = [e for e in entries if e.description == "login.failed"]
    assert len(failed) == ACCOUNT_LIMIT
    # Still locked, even for the right password.
    assert login_from(server, "127.0.12.42", email, PASSWORD) == codes.CONN_THROTTLED


def fullwidth(text: str) -> str:
    """ASCII letters and digits as their full-width forms (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.mark.parametrize("transport", ["grpc", "json"])
def test_password_policy_refuses_common_guessable_and_disguised(server, transport):
    user_id = new_id()
    server.create_user(user_id, password=PASSWORD)
    token = login_session(server, f"{user_id}@example.com")
    stub = make_stub(server, transport)
    metadata = (
        (("authorization", f"Key {token}"),)
        if transport == "json"  # the JSON channel sends only `authorization`
        else (("x-clarifai-session-token", token),)
    )

    def violations(password: str) -> set[str]:
        response = stub.PostValidatePassword(
            service_pb2.PostValidatePasswordRequest(
                user_app_id=me(), password=resources_pb2.Password(plaintext=password)
            ),
            metadata=metadata,
        )
        found = {field.name for field, value in response.password_violations.ListFields() if value}
        assert (response.status.code == codes.SUCCESS) == (not found), response.status
        return found

    for common in ("11111111", "Password123", "1qaz2wsx", "Summer2024", "       1"):
        assert violations(common) == {"no_simple_passwords"}, common
    assert violations("PASSWORD123") == {"no_simple_passwords"}  # case folded
    assert violations(fullwidth("Password123")) == {"no_simple_passwords"}  # NFKC
    assert violations(fullwidth(user_id) + "-Zebra-93") == {"exclude_names", "exclude_email"}
    assert violations(user_id.upper() + "-Zebra-93") == {"exclude_names", "exclude_email"}
    assert violations("blue-Harbor-42") == set()


def login_session(server: ServerProcess, email: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
    try:
        body = json.dumps({"email": email, "password": PASSWORD})
        connection.request("POST", "/v2/login", body, {"content-type": "application/json"})
        return json.loads(connection.getresponse().read())["session_token"]
    finally:
        connection.close()
