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
    x509, hashes, ec, ser = _modules()
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(clients))
    bad = [n for n in names if not n or "/" in n or n in ("ca", "server") or n.startswith(".")]
    if bad:
        raise ConfigurationError(f"client names must be plain file names, not {bad}")
    targets = [folder / f"{n}{s}.pem" for n in ["ca", "server", *names] for s in ("", "-key")]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise ConfigurationError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    oid = x509.oid
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=days)

    def name(common: str) -> Any:
        return x509.Name(
            [
                x509.NameAttribute(oid.NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(oid.NameOID.COMMON_NAME, common),
            ]
        )

    def pem_key(key: Any) -> bytes:
        return bytes(
            key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(f"{organization} CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common: str, sans: list[Any], usage: Any) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(ser.Encoding.PEM), pem_key(key)

    server_sans: list[Any] = []
    for host in hosts:
        try:
            server_sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            server_sans.append(x509.DNSName(host))
    written: dict[str, tuple[Path, Path]] = {}
    outputs = {"server": leaf("server", server_sans, oid.ExtendedKeyUsageOID.SERVER_AUTH)}
    for client in names:
        uri = x509.UniformResourceIdentifier(f"spiffe://{organization}/{client}")
        outputs[client] = leaf(client, [uri], oid.ExtendedKeyUsageOID.CLIENT_AUTH)
    _write(folder / "ca.pem", ca_cert.public_bytes(ser.Encoding.PEM), private=False)
    _write(folder / "ca-key.pem", pem_key(ca_key), private=True)
    for label, (cert_pem, key_pem) in outputs.items():
        _write(folder / f"{label}.pem", cert_pem, private=False)
        _write(folder / f"{label}-key.pem", key_pem, private=True)
        written[label] = (folder / f"{label}.pem", folder / f"{label}-key.pem")
    server = written.pop("server")
    return CertificateSet(
        ca_cert=folder / "ca.pem",
        ca_key=folder / "ca-key.pem",
        server_cert=server[0],
        server_key=server[1],
        clients=written,
    )
