"""The access log of a real server, read from its stderr: one JSON line per request with the
fields the issue lists, the request's id on it, and no secret anywhere in the log; the text
format; the id on every log line a request writes (in process: a handler thread's line)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import pytest
import requests
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.dispatch import Call
from scopegate.handlers import Handler
from scopegate.observability import logs
from scopegate.observability.access_log import AccessLog
from scopegate.server import serve as server_module
from tests.support.clients import make_stub, new_id
from tests.support.in_process import sign_up
from tests.support.server_process import ServerProcess

FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "transport",
    "method",
    "code",
    "status",
    "http_status",
    "latency_ms",
    "user_id",
    "credential_id",
    "client",
}


def json_lines(server: ServerProcess) -> list[dict]:
    found = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))  # every JSON-looking line must parse
    return found


def access_lines(server: ServerProcess, request_id: str, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [
            line
            for line in json_lines(server)
            if line.get("logger") == "scopegate.access" and line.get("request_id") == request_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # stderr is a file here, not a terminal: JSON by default, no option needed.
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("access-log"), database_url=None
    ).start()
    yield process
    process.stop()


def test_one_json_line_per_request_with_its_fields(server):
    user = new_id()
    pat = server.create_user(user, password="a long passphrase of mine 42")
    reply = requests.get(
        f"{server.http_url}/v2/myscopes", headers={"authorization": f"Key {pat}"}, timeout=30
    )
    request_id = reply.headers["x-request-id"]
    (line,) = access_lines(server, request_id)
    assert set(line) >= FIELDS, line
    assert line["level"] == "INFO"
    assert (line["transport"], line["method"], line["code"], line["status"]) == (
        "rest",
        "MyScopes",
        codes.SUCCESS,
        "SUCCESS",
    )
    assert line["http_status"] == 200
    assert line["user_id"] == user
    assert line["client"] == "127.0.0.1"
    assert line["credential_id"] and line["credential_id"] not in pat
    credential_id = line["credential_id"]
    assert 0 <= line["latency_ms"] < 10_000
    assert line["time"].endswith("Z")

    stub = make_stub(server, "grpc")
    answer = stub.MyScopes(
        service_pb2.MyScopesRequest(), metadata=(("authorization", f"Key {pat}"),)
    )
    (line,) = access_lines(server, answer.status.req_id)
    assert (line["transport"], line["method"], line["status"]) == ("grpc", "MyScopes", "SUCCESS")
    assert line["http_status"] is None
    assert (line["user_id"], line["credential_id"]) == (user, credential_id)


def test_refusals_are_logged_with_their_codes(server):
    other = new_id()
    pat = server.create_user(other)
    garbage = requests.get(
        f"{server.http_url}/v2/myscopes", headers={"authorization": "Key sgp_junk"}, timeout=30
    )
    (line,) = access_lines(server, garbage.headers["x-request-id"])
    assert (line["status"], line["http_status"], line["user_id"]) == ("CONN_KEY_INVALID", 401, "")
    hidden = requests.get(
        f"{server.http_url}/v2/users/someone-else/apps/theirs",
        headers={"authorization": f"Key {pat}"},
        timeout=30,
    )
    (line,) = access_lines(server, hidden.headers["x-request-id"])
    # The caller is known (the refusal is the policy's): its ids are logged.
    assert (line["status"], line["http_status"], line["user_id"]) == (
        "CONN_DOES_NOT_EXIST",
        404,
        other,
    )


def test_no_secret_reaches_the_log(server):
    """Every secret this test makes or sends, searched for in the whole log."""
    user = new_id()
    password = "correct horse battery staple 97"
    pat = server.create_user(user, password=password)
    secrets = [pat]
    made = requests.post(
        f"{server.http_url}/v2/users/me/keys",
        headers={"authorization": f"Key {pat}"},
        json={"keys": [{"description": "k", "scopes": ["All"], "type": "personal_access_token"}]},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    secrets.append(made.json()["keys"][0]["id"])
    login = requests.post(
        f"{server.http_url}/v2/login",
        json={"email": f"{user}@example.com", "password": password},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    secrets.append(login.json()["session_token"])
    forged = "sgp_" + "Z" * 40
    secrets.append(forged)
    stub = make_stub(server, "grpc")
    for secret in secrets:
        stub.MyScopes(service_pb2.MyScopesRequest(), metadata=(("authorization", f"Key {secret}"),))
        requests.get(
            f"{server.http_url}/v2/myscopes", headers={"authorization": f"Key {secret}"}, timeout=30
        )
    requests.get(
        f"{server.http_url}/v2/myscopes",
        headers={"x-clarifai-session-token": secrets[2]},
        timeout=30,
    )
    time.sleep(0.3)
    log = server.log()
    assert log.count('"logger":"scopegate.access"') >= 2 * len(secrets)
    for secret in [*secrets, password]:
        assert secret not in log
        assert secret[-16:] not in log  # nor a recognisable piece of one


def test_text_format_and_level(tmp_path):
    process = ServerProcess(
        data_dir=tmp_path, database_url=None, extra_args=["--log-format", "text"]
    ).start()
    try:
        pat = process.create_user(new_id())
        reply = requests.get(
            f"{process.http_url}/v2/myscopes", headers={"authorization": f"Key {pat}"}, timeout=30
        )
        request_id = reply.headers["x-request-id"]
        deadline = time.monotonic() + 5
        while request_id not in process.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        (line,) = [line for line in process.log().splitlines() if request_id in line]
        assert not line.startswith("{")
        assert "INFO scopegate.access" in line and "rest MyScopes SUCCESS 10000 200" in line
        assert pat not in process.log()
    finally:
        process.stop()
    quiet = ServerProcess(
        data_dir=tmp_path / "quiet",
        database_url=None,
        extra_env={"SCOPEGATE_LOG_LEVEL": "warning"},
    ).start()
    try:
        pat = quiet.create_user(new_id())
        reply = requests.get(
            f"{quiet.http_url}/v2/myscopes", headers={"authorization": f"Key {pat}"}, timeout=30
        )
        time.sleep(0.3)
        assert reply.headers["x-request-id"] not in quiet.log()
    finally:
        quiet.stop()


def test_bad_log_options_are_usage_errors(tmp_path):
    for args in (["--log-format", "xml"], ["--log-level", "chatty"]):
        process = ServerProcess(data_dir=tmp_path, database_url=None, extra_args=args)
        with pytest.raises(RuntimeError, match="exited early"):
            process.start(timeout=20)
        assert process.process.returncode == 2
        assert "log " in process.log()


def test_every_line_of_a_request_carries_its_id(services):
    """A handler running in a worker thread logs a line of its own: it carries the id the
    answer carries, as the access line does (in process: the logging of the server)."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure("json", "INFO", stream)
    try:
        pat = sign_up(services, "logger1")
        dispatcher = server_module.build_dispatcher(services)
        dispatcher.observers.append(AccessLog())

        def handler(_context, _request):
            logging.getLogger("scopegate.handlers.test").warning("working on it")
            return service_pb2.MultiScopeResponse()

        spec = services.catalog.method("MyScopes")
        call = Call(
            spec,
            service_pb2.MyScopesRequest(),
            f"Key {pat}",
            None,
            "127.0.0.1",
            handler=Handler(handler, blocking=True),
            transport="rest",
            request_id_prefix="tester",
        )
        response, _ = asyncio.run(dispatcher.dispatch(call))
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    req_id = response.status.req_id
    assert req_id.startswith("tester-")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line["logger"] == "scopegate.handlers.test"]
    assert [line["request_id"] for line in mine] == [req_id]
    access = [line for line in lines if line["logger"] == "scopegate.access"]
    assert [line["request_id"] for line in access] == [req_id]
