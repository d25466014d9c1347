"""Running the `scopegate` command line against a test server's data dir."""

from __future__ import annotations

import json

from tests.support.clients import new_id
from tests.support.server_process import ServerProcess, scopegate


def cli(server: ServerProcess, *args: str, input: str | None = None):
    return scopegate(*args, "--data-dir", str(server.data_dir), input=input)


def cli_json(server: ServerProcess, *args: str, input: str | None = None):
    result = cli(server, *args, "--json", input=input)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


def new_user(server: ServerProcess) -> tuple[str, str]:
    user_id = new_id()
    return user_id, server.create_user(user_id)


def one_error_line(result, code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
