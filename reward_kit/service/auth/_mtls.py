"""mTLS: the client certificate, verified by the TLS layer, authorises by subject or SAN URI."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from starlette.requests import HTTPConnection

from ..._errors import AuthenticationError, PermissionDenied
from ..._extras import require
from ._base import Identity

__all__ = ["MutualTlsAuthenticator", "certificate_identity"]

MODE = "mtls"


def certificate_identity(pem: str) -> tuple[str, list[str]]:
    """The RFC 4514 subject and the SAN URIs of a PEM certificate.

    >>> certificate_identity(open("client.pem").read())  # doctest: +SKIP
    ('CN=trainer-1,O=rl-lab', ['spiffe://rl-lab/trainer-1'])
    """
    x509 = require("cryptography.x509", extra="mtls", feature="mtls auth")
    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = [str(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    except x509.ExtensionNotFound:
        uris = []
    return cert.subject.rfc4514_string(), uris


class MutualTlsAuthenticator:
    """Reads the peer certificate the TLS protocol put in ``scope["extensions"]["tls"]``.

    >>> MutualTlsAuthenticator(allowed_uris=["spiffe://rl-lab/*"]).allowed_uris
    ('spiffe://rl-lab/*',)

    The chain was verified against ``--ssl-ca-certs`` during the handshake, so this is only
    authorisation: with no allow-list, every certificate that CA signed is accepted.
    """

    mode = MODE

    def __init__(
        self, *, allowed_subjects: Iterable[str] = (), allowed_uris: Iterable[str] = ()
    ) -> None:
        self.allowed_subjects = tuple(allowed_subjects)
        self.allowed_uris = tuple(allowed_uris)
        require("cryptography.x509", extra="mtls", feature="mtls auth")

    async def authenticate(self, connection: HTTPConnection) -> Identity | None:
        tls: Any = connection.scope.get("extensions", {}).get("tls")
        if not isinstance(tls, dict):
            if connection.url.scheme == "https":
                raise AuthenticationError(
                    f"{MODE}: the server cannot see client certificates (run it with `rk serve`, "
                    "which installs the TLS protocol)"
                )
            return None
        chain = tls.get("client_cert_chain") or []
        if not chain:
            return None
        subject, uris = certificate_identity(chain[0])
        if self.allowed_subjects or self.allowed_uris:
            ok = any(fnmatch.fnmatchcase(subject, p) for p in self.allowed_subjects) or any(
                fnmatch.fnmatchcase(u, p) for u in uris for p in self.allowed_uris
            )
            if not ok:
                raise PermissionDenied(
                    f"{MODE}: certificate {subject!r} is not on this evaluator's allow-list"
                )
        return Identity(mode=MODE, subject=subject, details={"san_uris": uris})
