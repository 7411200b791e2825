"""Bearer-token authentication and TLS credentials of the cloud server.

Every call of the inference service must carry ``authorization: Bearer <token>``
metadata, compared in constant time with the token read from a file; a missing or wrong
token is answered UNAUTHENTICATED before any handler runs. The gRPC health service stays
open, as load balancers and orchestrators probe it without credentials.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import grpc

from rpc.errors import ServerConfigError
from rpc.protocol import HEALTH_SERVICE

AUTH_HEADER = "authorization"


def read_token(path: str | Path) -> str:
    """The token in ``path`` (surrounding whitespace stripped); it must not be empty."""
    try:
        token = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ServerConfigError(f"cannot read token file {path}: {exc}") from exc
    if not token or any(c.isspace() for c in token):
        raise ServerConfigError(f"token file {path} must hold one token without spaces")
    return token


def bearer(token: str) -> tuple[tuple[str, str]]:
    """Call metadata that carries ``token``."""
    return ((AUTH_HEADER, f"Bearer {token}"),)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls without the right bearer token (UNAUTHENTICATED)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(f"/{HEALTH_SERVICE}/"):
            return handler
        given = dict(handler_call_details.invocation_metadata or ()).get(AUTH_HEADER, "")
        given_bytes = given.encode() if isinstance(given, str) else bytes(given)
        if hmac.compare_digest(given_bytes, self._expected):
            return handler
        return _denied(handler)


def _denied(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    def deny(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


def server_credentials(
    cert: str | Path, key: str | Path, client_ca: str | Path | None = None
) -> grpc.ServerCredentials:
    """TLS credentials; with ``client_ca`` clients must present a certificate it signed."""
    chain, private = _read(cert), _read(key)
    ca = _read(client_ca) if client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(private, chain)], root_certificates=ca, require_client_auth=ca is not None
    )


def channel_credentials(
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
) -> grpc.ChannelCredentials:
    """Client TLS credentials: trust ``ca`` (system roots if None), optional client cert."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca) if ca else None,
        private_key=_read(key) if key else None,
        certificate_chain=_read(cert) if cert else None,
    )


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ServerConfigError(f"cannot read {path}: {exc}") from exc
