"""Official V2 clients for the test servers, on both transports, and fresh ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2_grpc

from tests.support.server_process import ServerProcess

TRANSPORTS = ["grpc", "json"]


def new_id(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass
class Client:
    """An official V2 stub plus the metadata helpers tests use."""

    transport: str
    stub: service_pb2_grpc.V2Stub

    @staticmethod
    def auth(secret: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Key {secret}"),)


def trust_only(session, cert) -> None:
    """Make a requests session trust `cert` alone. Not from the environment: requests lets
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, when set, override the session's own setting."""
    session.verify = str(cert)
    session.trust_env = False


def make_stub(server: ServerProcess, transport: str) -> service_pb2_grpc.V2Stub:
    # The official stub captures the channel kind when built: build it right after its channel.
    # A TLS server's stubs trust its certificate, as users of a private CA configure them.
    if transport == "grpc":
        if server.tls:
            channel = ClarifaiChannel.get_grpc_channel(
                base=server.grpc_address, root_certificates_path=str(server.tls.cert)
            )
            return service_pb2_grpc.V2Stub(channel)
        host, port = server.grpc_address.split(":")
        channel = ClarifaiChannel.get_insecure_grpc_channel(base=host, port=int(port))
        return service_pb2_grpc.V2Stub(channel)
    channel = ClarifaiChannel.get_json_channel(base_url=server.http_url)
    if server.tls:
        trust_only(channel.session, server.tls.cert)
    return service_pb2_grpc.V2Stub(channel)
