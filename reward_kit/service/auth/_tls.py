"""Give ASGI apps the verified client certificate, which uvicorn 0.54 does not.

uvicorn has no ASGI TLS extension yet (Kludex/uvicorn#3132/#3133 are open), and a middleware
cannot reach the transport. These protocol subclasses read the peer certificate once per
connection (``ssl`` has already verified it against ``ssl_ca_certs``) and put it in every
request's ``scope["extensions"]["tls"]`` in the shape of the ASGI TLS extension. They couple to
uvicorn internals (``self.app``, ``connection_made``), hence the exact uvicorn pin and a test.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["TlsH11Protocol", "tls_extension", "tls_protocol_class"]


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any] | None:
    """The ASGI TLS extension dict for one connection, or None when it is not TLS."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": ssl_object.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


class _WithTls:
    """Wraps the app for one connection so each of its scopes carries the TLS extension."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app, self.tls = app, tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("extensions", {})["tls"] = self.tls
        await self.app(scope, receive, send)


class _TlsMixin:
    app: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        # asyncio calls connection_made after the handshake, so the peer cert is final here.
        tls = tls_extension(transport.get_extra_info("ssl_object"))
        if tls is not None:
            self.app = _WithTls(self.app, tls)


class TlsH11Protocol(_TlsMixin, H11Protocol):
    """uvicorn's h11 protocol plus ``scope["extensions"]["tls"]``."""


def tls_protocol_class() -> type[asyncio.Protocol]:
    """The httptools variant when httptools is installed (what uvicorn's "auto" picks)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return TlsH11Protocol

    class TlsHttpToolsProtocol(_TlsMixin, HttpToolsProtocol):
        """uvicorn's httptools protocol plus ``scope["extensions"]["tls"]``."""

    return TlsHttpToolsProtocol
