"""The CLI contract: `scopegate users create` and environment-variable configuration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from tests.support.clients import new_id
from tests.support.server_process import free_port, scopegate


def test_users_create_json_prints_pat_once_on_last_line(tmp_path):
    result = scopegate(
        "users",
        "create",
        "ada",
        "--email",
        "ada@example.com",
        "--json",
        "--data-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["user_id"] == "ada" and last["pat"].startswith("sgp_")
    # The secret is stored only as a keyed hash.
    assert last["pat"].encode() not in (tmp_path / "scopegate.db").read_bytes()


def test_users_create_text_and_duplicate(tmp_path):
    first = scopegate(
        "users", "create", "bob", "--email", "bob@example.com", "--data-dir", str(tmp_path)
    )
    assert first.returncode == 0 and "sgp_" in first.stdout
    again = scopegate(
        "users", "create", "bob", "--email", "other@example.com", "--data-dir", str(tmp_path)
    )
    assert again.returncode == 1
    assert "already taken" in again.stderr and "Traceback" not in again.stderr
    bad = scopegate(
        "users", "create", "me", "--email", "me@example.com", "--data-dir", str(tmp_path)
    )
    assert bad.returncode == 1 and "reserved" in bad.stderr


def test_password_stdin_enforces_policy(tmp_path):
    weak = scopegate(
        "users",
        "create",
        "cy",
        "--email",
        "cy@example.com",
        "--password-stdin",
        "--data-dir",
        str(tmp_path),
        input="short\n",
    )
    assert weak.returncode == 2 and "at least 8" in weak.stderr
    strong = scopegate(
        "users",
        "create",
        "cy",
        "--email",
        "cy@example.com",
        "--password-stdin",
        "--data-dir",
        str(tmp_path),
        input="correct horse 42\n",
    )
    assert strong.returncode == 0, strong.stderr


def test_environment_variables_configure_serve_and_cli(tmp_path):
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "SCOPEGATE_DATA_DIR": str(tmp_path),
        "SCOPEGATE_HTTP_PORT": str(http_port),
        "SCOPEGATE_GRPC_PORT": str(grpc_port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "scopegate", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not any("data in" in line for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        output = "".join(lines)
        assert f"127.0.0.1:{grpc_port}" in output and str(tmp_path) in output
        user_id = new_id()
        created = scopegate(
            "users",
            "create",
            user_id,
            "--email",
            f"{user_id}@example.com",
            "--json",
            env={
                "SCOPEGATE_DATABASE_URL": f"sqlite+pysqlite:///{tmp_path / 'scopegate.db'}",
                "SCOPEGATE_DATA_DIR": str(tmp_path),
            },
        )
        assert created.returncode == 0, created.stderr
        pat = json.loads(created.stdout.strip().splitlines()[-1])["pat"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/v2/users/me", headers={"authorization": f"Key {pat}"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert json.loads(reply.read())["user"]["id"] == user_id
    finally:
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert process.returncode == 0
