"""`scopegate serve --tls-cert --tls-key`: gRPC and HTTPS over TLS, checked by official clients.

The servers use a throwaway self-signed certificate for localhost and 127.0.0.1 (made with
`openssl`, tests/support/tls.py); clients trust that file as their only root, and check the
host name, as they would for a server with a certificate from a private CA.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
import requests
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.channel.errors import ApiError
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.api import pat_reads_its_user
from tests.support.clients import TRANSPORTS, Client, make_stub, new_id, trust_only
from tests.support.server_process import ServerProcess, scopegate
from tests.support.tls import Certificate, self_signed


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_official_clients_over_tls(tls_server, transport):
    """The official gRPC channel with its root-certificate option, and the JSON channel over
    HTTPS trusting the certificate: a PAT works, an unknown one is refused as usual."""
    pat_reads_its_user(tls_server, transport)


def test_https_and_grpc_health_over_tls(tls_server):
    url = f"{tls_server.http_url}/v2/status_codes/10000"
    context = tls_server.tls.client_context()
    with urllib.request.urlopen(url, timeout=10, context=context) as reply:
        assert reply.status == 200
        assert json.loads(reply.read())["status"]["code"] == codes.SUCCESS
    credentials = grpc.ssl_channel_credentials(tls_server.tls.cert.read_bytes())
    # By IP address too: the certificate names 127.0.0.1 as well as localhost.
    for address in (tls_server.grpc_address, f"127.0.0.1:{tls_server.grpc_port}"):
        with grpc.secure_channel(address, credentials) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    log = tls_server.log()
    assert f"gRPC listening on 127.0.0.1:{tls_server.grpc_port} (TLS)" in log
    assert f"HTTPS listening on https://127.0.0.1:{tls_server.http_port}" in log
    # The key never reaches the log.
    key_body = "".join(tls_server.tls.key.read_text().splitlines()[1:-1])
    assert key_body and key_body[:32] not in log.replace("\n", "")


def test_plaintext_is_refused_on_both_ports(tls_server):
    with grpc.insecure_channel(f"127.0.0.1:{tls_server.grpc_port}") as channel:
        stub = service_pb2_grpc.V2Stub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetStatusCode(service_pb2.GetStatusCodeRequest(status_code_id="10000"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    plain = f"http://127.0.0.1:{tls_server.http_port}/healthz"
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(plain, timeout=5).close()


def test_an_untrusted_or_misnamed_certificate_is_refused(tls_server, tmp_path):
    """Clients really check: the certificate is trusted by no default roots, nor by a trusted
    stranger's certificate, and names localhost and 127.0.0.1 only."""
    stranger = self_signed(tmp_path, "stranger")
    request = service_pb2.GetStatusCodeRequest(status_code_id="10000")
    trusted = tls_server.tls.cert.read_bytes()
    for roots, options in (
        (None, ()),
        (stranger.cert.read_bytes(), ()),
        (trusted, (("grpc.ssl_target_name_override", "elsewhere.test"),)),
    ):
        credentials = grpc.ssl_channel_credentials(roots)
        with (
            grpc.secure_channel(tls_server.grpc_address, credentials, options) as channel,
            pytest.raises(grpc.RpcError) as raised,
        ):
            service_pb2_grpc.V2Stub(channel).GetStatusCode(request, timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    for context in (ssl.create_default_context(), stranger.client_context()):
        with pytest.raises(urllib.error.URLError) as raised:
            urllib.request.urlopen(f"{tls_server.http_url}/healthz", timeout=5, context=context)
        assert isinstance(raised.value.reason, ssl.SSLCertVerificationError)
    context = tls_server.tls.client_context()
    with (
        socket.create_connection(("127.0.0.1", tls_server.http_port), timeout=5) as sock,
        pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
    ):
        context.wrap_socket(sock, server_hostname="elsewhere.test")
    # The official JSON channel as it comes, trusting the usual roots.
    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=tls_server.http_url))
    with pytest.raises(ApiError) as refused:
        stub.GetStatusCode(request, metadata=Client.auth("sgp_nope"))
    assert isinstance(refused.value.__context__, requests.exceptions.SSLError)
    assert "certificate verify failed" in str(refused.value.__context__)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Certificates and keys, good and bad, for `scopegate serve` to check."""
    directory = tmp_path_factory.mktemp("tls-files")
    good, other = self_signed(directory, "good"), self_signed(directory, "other")
    encrypted = subprocess.run(
        ["openssl", "pkey", "-in", str(good.key), "-aes256", "-passout", "pass:secret"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    (directory / "encrypted.key").write_bytes(encrypted)
    (directory / "garbage.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    return {
        "cert": good.cert,
        "key": good.key,
        "other.key": other.key,
        "encrypted.key": directory / "encrypted.key",
        "garbage.crt": directory / "garbage.crt",
        "missing": directory / "missing.pem",
        "dir": directory,
    }


@pytest.mark.parametrize(
    "cert, key, message",
    [
        ("cert", None, "--tls-cert and --tls-key go together"),
        (None, "key", "--tls-cert and --tls-key go together"),
        ("missing", "key", "cannot read the TLS certificate"),
        ("cert", "missing", "cannot read the TLS key"),
        ("dir", "key", "cannot read the TLS certificate"),
        ("cert", "other.key", "does not match the certificate"),
        ("key", "key", "holds no PEM certificate"),
        ("cert", "cert", "holds no PEM private key"),
        ("cert", "encrypted.key", "is encrypted"),
        ("garbage.crt", "key", "not a valid PEM certificate"),
    ],
)
def test_serve_refuses_a_bad_certificate_or_key(files, tmp_path, cert, key, message):
    args = ["serve", "--data-dir", str(tmp_path), "--grpc-port", "0", "--http-port", "0"]
    if cert:
        args += ["--tls-cert", str(files[cert])]
    if key:
        args += ["--tls-key", str(files[key])]
    result = scopegate(*args)
    printed = result.stdout + result.stderr
    assert result.returncode != 0, printed
    assert "Traceback" not in printed and "listening" not in printed, printed
    assert message in " ".join(printed.split()), printed
    for name in ("key", "other.key"):
        body = "".join(files[name].read_text().splitlines()[1:-1])
        assert body[:24] not in printed.replace("\n", ""), printed


def test_tls_files_from_the_environment(files, tmp_path):
    """SCOPEGATE_TLS_CERT and SCOPEGATE_TLS_KEY stand for the options, as other settings do."""
    mismatched = {
        "SCOPEGATE_TLS_CERT": str(files["cert"]),
        "SCOPEGATE_TLS_KEY": str(files["other.key"]),
    }
    result = scopegate("serve", "--data-dir", str(tmp_path), env=mismatched)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "does not match" in " ".join(result.stderr.split()), result.stderr
    server = ServerProcess(
        data_dir=tmp_path / "data",
        database_url=None,
        tls=Certificate(files["cert"], files["key"]),
        tls_from_env=True,
    ).start()
    try:
        stub = make_stub(server, "grpc")
        reply = stub.GetStatusCode(service_pb2.GetStatusCodeRequest(status_code_id="10000"))
        assert reply.status.code == codes.SUCCESS
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize("tls_server", ["sqlite"], indirect=True)
def test_portal_cookies_are_secure_over_https(tls_server):
    """Served over HTTPS, the portal's cookies (the pre-session one of the sign-up form and
    the login session) are Secure as well as HttpOnly and SameSite, set and cleared alike."""
    browser = requests.Session()
    trust_only(browser, tls_server.tls.cert)
    portal = f"{tls_server.http_url}/portal"

    def set_cookies(reply) -> dict[str, str]:
        return {h.split("=", 1)[0]: h for h in reply.raw.headers.getlist("set-cookie")}

    def assert_flags(header: str) -> None:
        flags = {part.strip().split("=")[0].lower() for part in header.split(";")}
        assert {"httponly", "secure", "samesite"} <= flags, header
        assert "samesite=lax" in header.lower() and "path=/portal" in header.lower(), header

    form = browser.get(f"{portal}/signup", timeout=10)
    assert form.status_code == 200
    assert_flags(set_cookies(form)["sg_portal_pre"])
    user_id = new_id()
    signed_up = browser.post(
        f"{portal}/signup",
        data={
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1),
            "email": f"{user_id}@example.com",
            "user_id": user_id,
            "password": "blue-Harbor-42",
        },
        headers={"origin": tls_server.http_url},
        timeout=30,
    )
    assert signed_up.status_code == 200 and "Your account is ready" in signed_up.text
    assert_flags(set_cookies(signed_up)["sg_portal_session"])

    security = browser.get(f"{portal}/security", timeout=10)  # the cookie goes back
    assert security.url == f"{portal}/security" and user_id in security.text
    logout = browser.post(
        f"{portal}/logout",
        data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', security.text)[1]},
        headers={"origin": tls_server.http_url},
        allow_redirects=False,
        timeout=10,
    )
    assert logout.status_code == 303
    cleared = set_cookies(logout)["sg_portal_session"]
    assert_flags(cleared)
    assert "max-age=0" in cleared.lower()
