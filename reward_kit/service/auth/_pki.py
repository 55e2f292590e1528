"""A small private CA for mTLS: a CA, a server certificate and client certificates.

Made with ``cryptography`` (the ``[mtls]`` extra) for local use and tests; production setups
usually have their own PKI (cert-manager, SPIFFE, a cloud CA).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._errors import ConfigurationError
from ..._extras import require

__all__ = ["CertificateSet", "init_certificates"]


@dataclass(frozen=True)
class CertificateSet:
    """Paths written by :func:`init_certificates`."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]]


def _modules() -> tuple[Any, Any, Any, Any]:
    x509 = require("cryptography.x509", extra="mtls", feature="rk certs")
    hashes = require("cryptography.hazmat.primitives.hashes", extra="mtls", feature="rk certs")
    ec = require("cryptography.hazmat.primitives.asymmetric.ec", extra="mtls", feature="rk certs")
    ser = require("cryptography.hazmat.primitives.serialization", extra="mtls", feature="rk certs")
    return x509, hashes, ec, ser


def _write(path: Path, data: bytes, *, private: bool) -> None:
    # Keys are created 0600 from the start, never world-readable for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def init_certificates(
    directory: str | os.PathLike[str],
    *,
    clients: Iterable[str] = ("client",),
    organization: str = "reward-kit",
    hosts: Iterable[str] = ("localhost", "127.0.0.1"),
    days: int = 365,
    overwrite: bool = False,
) -> CertificateSet:
    """Write ``ca.pem``, ``server.pem`` and ``NAME.pem`` (each with ``*-key.pem``) to a folder.

    >>> certs = init_certificates("certs", clients=["trainer-1"])  # doctest: +SKIP
    >>> certs.clients["trainer-1"]  # doctest: +SKIP
    (PosixPath('certs/trainer-1.pem'), PosixPath('certs/trainer-1-key.pem'))

    Client certificates carry ``CN=NAME,O=<organization>`` and the SAN URI
    ``spiffe://<organization>/NAME`` for the server's allow-lists.
    """
    names = _client_names(clients)
    ca = _Authority(organization=organization, days=days)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    _refuse_to_overwrite(folder, ["ca", "server", *names], overwrite=overwrite)
    # Everything is made before anything is written: a failure leaves no partial set.
    pems = {"ca": ca.pems(), "server": ca.issue_server(hosts)}
    pems |= {name: ca.issue_client(name) for name in names}
    written = {label: _write_pair(folder, label, *pair) for label, pair in pems.items()}
    ca_files, server = written.pop("ca"), written.pop("server")
    return CertificateSet(
        ca_cert=ca_files[0],
        ca_key=ca_files[1],
        server_cert=server[0],
        server_key=server[1],
        clients=written,
    )


def _client_names(clients: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(clients))
    bad = [n for n in names if not n or "/" in n or n in ("ca", "server") or n.startswith(".")]
    if bad:
        raise ConfigurationError(f"client names must be plain file names, not {bad}")
    return names


def _refuse_to_overwrite(folder: Path, labels: list[str], *, overwrite: bool) -> None:
    targets = [folder / f"{label}{suffix}.pem" for label in labels for suffix in ("", "-key")]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise ConfigurationError(f"refusing to overwrite {', '.join(existing)} (use --force)")


def _write_pair(folder: Path, label: str, cert_pem: bytes, key_pem: bytes) -> tuple[Path, Path]:
    cert, key = folder / f"{label}.pem", folder / f"{label}-key.pem"
    _write(cert, cert_pem, private=False)
    _write(key, key_pem, private=True)
    return cert, key


class _Authority:
    """A CA key and self-signed certificate (P-256, SHA-256) that issues leaf certificates,
    all valid from 5 minutes ago (clock skew) for ``days``."""

    def __init__(self, *, organization: str, days: int) -> None:
        self.x509, self.hashes, self.ec, self.ser = _modules()
        self.organization = organization
        self.not_before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
            minutes=5
        )
        self.not_after = self.not_before + datetime.timedelta(days=days)
        self.key = self.ec.generate_private_key(self.ec.SECP256R1())
        self.name = self._name(f"{organization} CA")
        self.certificate = (
            self._builder(self.name, self.key.public_key(), issuer=self.name)
            .add_extension(self.x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(self.x509), critical=True)
            .add_extension(
                self.x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), False
            )
            .sign(self.key, self.hashes.SHA256())
        )

    def pems(self) -> tuple[bytes, bytes]:
        """The CA's certificate and key, PEM."""
        return self._pem(self.certificate), self._pem_key(self.key)

    def issue_server(self, hosts: Iterable[str]) -> tuple[bytes, bytes]:
        sans: list[Any] = []
        for host in hosts:
            try:
                sans.append(self.x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(self.x509.DNSName(host))
        return self._issue("server", sans, self.x509.oid.ExtendedKeyUsageOID.SERVER_AUTH)

    def issue_client(self, name: str) -> tuple[bytes, bytes]:
        uri = self.x509.UniformResourceIdentifier(f"spiffe://{self.organization}/{name}")
        return self._issue(name, [uri], self.x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(self, common: str, sans: list[Any], usage: Any) -> tuple[bytes, bytes]:
        """A leaf certificate and its key, PEM."""
        x509 = self.x509
        key = self.ec.generate_private_key(self.ec.SECP256R1())
        cert = (
            self._builder(self._name(common), key.public_key(), issuer=self.name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, self.hashes.SHA256())
        )
        return self._pem(cert), self._pem_key(key)

    def _pem(self, cert: Any) -> bytes:
        return bytes(cert.public_bytes(self.ser.Encoding.PEM))

    def _pem_key(self, key: Any) -> bytes:
        ser = self.ser
        return bytes(
            key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        )

    def _builder(self, subject: Any, public_key: Any, *, issuer: Any) -> Any:
        return (
            self.x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(self.x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
        )

    def _name(self, common: str) -> Any:
        oid = self.x509.oid.NameOID
        return self.x509.Name(
            [
                self.x509.NameAttribute(oid.ORGANIZATION_NAME, self.organization),
                self.x509.NameAttribute(oid.COMMON_NAME, common),
            ]
        )


def _ca_key_usage(x509: Any) -> Any:
    """A CA's key signs certificates and CRLs (and, as every key here, digital signatures)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
