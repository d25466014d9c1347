"""nginx (`auth_request`), Caddy (`forward_auth`) and Traefik (`ForwardAuth`) with scopegate
as their authorization service (issue 15), really started on loopback ports in front of a
recording HTTP upstream, with the README's configurations, on both databases.

From the README: an allowed request reaches the upstream with the identity headers and
without the client's secrets or its own `x-scopegate-*` headers; a refused one never
arrives, and the client gets 401 (missing or invalid credential) or 403 (anything else),
with Caddy and Traefik the Clarifai JSON body too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support import proxies
from tests.support.api import add_collaborator
from tests.support.apps import new_app
from tests.support.clients import Client, make_stub, new_id

READS = ["Apps_Get", "Inputs_Get", "Annotations_Get", "Concepts_Get"]
PROXIES = {
    "nginx": (proxies.NGINX, proxies.nginx),
    "caddy": (proxies.CADDY, proxies.caddy),
    "traefik": (proxies.TRAEFIK, proxies.traefik),
}
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def upstream():
    with proxies.RecordingUpstream() as recording:
        yield recording


@pytest.fixture(scope="module", params=sorted(PROXIES))
def proxy(request, server, upstream, tmp_path_factory):
    """(kind, base URL) of a running proxy in front of `upstream`, asking `server`."""
    program, start = PROXIES[request.param]
    reason = proxies.missing(program)
    if reason:
        pytest.skip(reason)
    with start(tmp_path_factory.mktemp(request.param), server.http_url, upstream) as url:
        yield request.param, url


@pytest.fixture(scope="module")
def owner(server):
    client = Client("grpc", make_stub(server, "grpc"))
    user_id = new_id()
    pat = server.create_user(user_id)
    app_a, key_a = new_app(client, pat)
    app_b, key_b = new_app(client, pat)
    return {
        "id": user_id,
        "pat": pat,
        "app": app_a,
        "key": key_a,
        "other_app": app_b,
        "other_key": key_b,
        "client": client,
    }


def send(proxy, path: str, secret: str | None = None, headers=None, method="GET"):
    sent = dict(headers or {})
    if secret:
        sent["Authorization"] = f"Key {secret}"
    return requests.request(method, proxy[1] + path, headers=sent, timeout=30)


def arrived(upstream, marker: str) -> list[proxies.Arrival]:
    return [a for a in upstream.seen if a.headers.get("x-test-marker") == marker]


def passes(proxy, upstream, path: str, secret: str, headers=None) -> proxies.Arrival:
    marker = new_id("m")
    reply = send(proxy, path, secret, {**(headers or {}), "X-Test-Marker": marker})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"upstream": "answered"}
    (arrival,) = arrived(upstream, marker)
    return arrival


def refused(proxy, upstream, path: str, secret: str | None, headers=None) -> tuple[int, int]:
    """(HTTP status, Clarifai code or 0 where the proxy shows no body) of a refusal, which
    must not have reached the upstream."""
    marker = new_id("m")
    before = len(upstream.seen)
    reply = send(proxy, path, secret, {**(headers or {}), "X-Test-Marker": marker})
    assert reply.status_code in (401, 403), reply.text
    assert not arrived(upstream, marker)
    assert len(upstream.seen) == before
    if proxy[0] != "nginx":  # Caddy and Traefik pass the auth service's answer on
        assert reply.headers["content-type"] == "application/json"
        return reply.status_code, reply.json()["status"]["code"]
    return reply.status_code, 0


def test_allowed_arrives_with_identity_and_without_secrets(proxy, upstream, owner):
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs?per_page=2"
    arrival = passes(proxy, upstream, path, owner["pat"])
    assert arrival.path == path
    headers = arrival.headers
    assert headers["x-scopegate-caller"] == owner["id"]
    assert headers["x-scopegate-credential-type"] == "personal_access_token"
    assert headers["x-scopegate-credential"]
    assert headers["x-scopegate-relation"] == "owner"
    assert headers["x-scopegate-scopes"] == "All"
    assert headers["x-request-id"].startswith("sg-")
    assert "authorization" not in headers
    assert owner["pat"] not in str(headers)
    key_arrival = passes(proxy, upstream, "/v2/inputs", owner["key"])
    assert key_arrival.headers["x-scopegate-credential-type"] == "app_specific_key"
    assert key_arrival.headers["x-scopegate-caller"] == owner["id"]


def test_spoofed_identity_headers_never_arrive(server, proxy, upstream, owner):
    """A collaborator granted reads of inputs claims to be the owner, with All."""
    app_id, guest_id, guest_pat, _ = add_collaborator(server, owner["client"], owner["pat"], READS)
    spoofed = {
        "X-Scopegate-Caller": owner["id"],
        "X-Scopegate-Relation": "owner",
        "X-Scopegate-Scopes": "All",
        "X-Scopegate-Credential-Type": "app_specific_key",
        "X-Scopegate-Assertion": "forged",
        "X-Request-Id": "spoofed",
        "X-Clarifai-Session-Token": "sgs_forged",
    }
    if proxy[0] != "nginx":  # Caddy and Traefik drop the client's x-scopegate-* by prefix
        spoofed["x-scopegate-not-ours"] = "forged"
    # Names aliasing the identity's (a CGI or WSGI server reads X_Scopegate_Caller as
    # X-Scopegate-Caller): nginx ignores them, Traefik's entry point drops them, Caddy's
    # configuration removes every name containing "scopegate" (README).
    spoofed.update(
        {
            "X_Scopegate_Caller": "forged",
            "X.Scopegate.Relation": "forged",
            "X-Scopegate_Scopes": "forged",
        }
    )
    path = f"/v2/users/{owner['id']}/apps/{app_id}/inputs"
    headers = passes(proxy, upstream, path, guest_pat, spoofed).headers
    assert headers["x-scopegate-caller"] == guest_id
    assert headers["x-scopegate-credential-type"] == "personal_access_token"
    assert headers["x-scopegate-relation"] == "collaborator"
    assert set(headers["x-scopegate-scopes"].split(",")) == set(READS)
    assert headers["x-request-id"].startswith("sg-")
    assert not headers.get("x-scopegate-assertion")
    assert "x-scopegate-not-ours" not in headers
    assert "x-clarifai-session-token" not in headers
    assert "forged" not in str(headers) and "spoofed" not in str(headers)


IDENTITY = (
    "x-scopegate-caller",
    "x-scopegate-credential",
    "x-scopegate-credential-type",
    "x-scopegate-scopes",
    "x-scopegate-relation",
)


def test_a_call_without_a_caller_arrives_without_identity(proxy, upstream, owner):
    """A NoAuth call has no caller: its identity headers arrive absent or empty, never as
    text of the proxy's own (Caddy before 2.10 writes its placeholder,
    `{http.reverse_proxy.header.X-Scopegate-Caller}`, for a header the auth service's
    answer lacks), and the client's own values never arrive in their place."""
    spoofed = {"X-Scopegate-Caller": "forged", "X-Scopegate-Relation": "forged"}
    for secret in (None, owner["pat"]):
        marker = new_id("m")
        reply = send(proxy, "/v2/status_codes/10000", secret, {**spoofed, "X-Test-Marker": marker})
        assert reply.status_code == 200, reply.text
        (arrival,) = arrived(upstream, marker)
        headers = arrival.headers
        assert headers["x-request-id"].startswith("sg-")
        assert not any("{" in value or "forged" in value for value in headers.values()), headers
        if secret is None:
            for name in IDENTITY:
                assert not headers.get(name), (name, headers)


def test_missing_or_invalid_credential_is_401(proxy, upstream, owner):
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs"
    expect = {"nginx": 0}
    assert refused(proxy, upstream, path, None) == (
        401,
        expect.get(proxy[0], codes.CONN_INVALID_REQUEST),
    )
    assert refused(proxy, upstream, path, "sgp_garbage") == (
        401,
        expect.get(proxy[0], codes.CONN_KEY_INVALID),
    )


def test_hostile_callers_are_refused(server, proxy, upstream, owner):
    nginx = proxy[0] == "nginx"
    not_visible = (403, 0 if nginx else codes.CONN_DOES_NOT_EXIST)
    key_invalid = (401, 0 if nginx else codes.CONN_KEY_INVALID)
    app_path = f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs"
    # A stranger.
    stranger = server.create_user(new_id())
    assert refused(proxy, upstream, app_path, stranger) == not_visible
    # A collaborator granted All on another app of the owner.
    granted_app, _, guest_pat, _ = add_collaborator(server, owner["client"], owner["pat"], ["All"])
    granted = f"/v2/users/{owner['id']}/apps/{granted_app}/inputs"
    assert passes(proxy, upstream, granted, guest_pat).headers["x-scopegate-relation"] == (
        "collaborator"
    )
    assert refused(proxy, upstream, app_path, guest_pat) == not_visible
    # Another app's API key.
    assert refused(proxy, upstream, app_path, owner["other_key"]) == key_invalid
    # A URI naming another app than the key's.
    other = f"/v2/users/{owner['id']}/apps/{owner['other_app']}/inputs"
    assert refused(proxy, upstream, other, owner["key"]) == key_invalid
    # The same, with the client naming its own app in the header form its proxy does not
    # set (nginx sets X-Original-URI, Caddy and Traefik X-Forwarded-Uri): the two disagree,
    # refused.
    forged = {"X-Forwarded-Uri": app_path} if nginx else {"X-Original-URI": app_path}
    forged.update({"X-Forwarded-Method": "GET"} if nginx else {"X-Original-Method": "GET"})
    assert refused(proxy, upstream, other, owner["key"], forged) == (
        403,
        0 if nginx else codes.CONN_INVALID_REQUEST,
    )
    # And in the form its proxy sets: the proxy's own value replaces the client's.
    form = "Original" if nginx else "Forwarded"
    own = {f"X-{form}-URI": app_path, f"X-{form}-Method": "GET"}
    assert refused(proxy, upstream, other, owner["key"], own) == key_invalid


def test_readme_shows_the_traefik_configuration_run_here():
    """The README's Traefik block is the dynamic configuration these tests run."""
    block = "```yaml\n" + proxies.traefik_config("scopegate:8000", "platform:9000") + "```\n"
    assert block in README.read_text()


def test_readme_shows_the_caddy_configuration_run_here():
    """The README's Caddy site is the one these tests run."""
    block = "```caddyfile\n" + proxies.caddy_site(
        "api.example.com", "scopegate:8000", "platform:9000"
    )
    assert block + "```\n" in README.read_text()
