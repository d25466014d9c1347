"""Password logins under attack, on the real server: the throttle counts an attempt before
its password is checked, so concurrent guesses cannot outrun it."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.conftest import make_stub, new_id
from tests.server_process import ServerProcess
from tests.test_authentication import me
from tests.test_flow import ok

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
