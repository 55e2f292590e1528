"""API-key authentication: ``Authorization: Bearer <key>`` or ``X-Api-Key: <key>``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import HTTPConnection

from ..._errors import ConfigurationError, PermissionDenied
from ._base import Identity

__all__ = ["ApiKeyEntry", "ApiKeyAuthenticator", "parse_key_entries"]


@dataclass(frozen=True)
class ApiKeyEntry:
    """One accepted key, held only as its SHA-256 digest."""

    id: str
    digest: bytes


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_key_entries(entries: Iterable[str], *, origin: str = "keys") -> list[ApiKeyEntry]:
    """Entries are ``KEY``, ``ID KEY``, or either with ``sha256:<hex>`` instead of the key, so a
    server can hold hashes only. Blank lines and ``#`` comments are skipped."""
    keys: list[ApiKeyEntry] = []
    for number, raw in enumerate(entries, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 2:
            raise ConfigurationError(
                f"{origin} entry {number}: expected 'KEY' or 'ID KEY', got {len(parts)} words"
            )
        key_id, secret = (parts[0], parts[1]) if len(parts) == 2 else (f"key-{number}", parts[0])
        if secret.startswith("sha256:"):
            try:
                digest = bytes.fromhex(secret.removeprefix("sha256:"))
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise ConfigurationError(
                    f"{origin} entry {number} ({key_id}): sha256: must be followed by 64 hex digits"
                )
        else:
            if len(secret) < 16:
                raise ConfigurationError(
                    f"{origin} entry {number} ({key_id}): keys must be at least 16 characters"
                )
            digest = _digest(secret)
        keys.append(ApiKeyEntry(id=key_id, digest=digest))
    return keys


class ApiKeyAuthenticator:
    """Accepts any of several keys (rotation); compares digests in constant time.

    >>> auth = ApiKeyAuthenticator.from_entries(["trainer-a 0123456789abcdef0123"])
    >>> [k.id for k in auth.keys]
    ['trainer-a']
    """

    mode = "api-key"

    def __init__(self, *, keys: Iterable[ApiKeyEntry]) -> None:
        self.keys = list(keys)
        if not self.keys:
            raise ConfigurationError("api-key auth needs at least one key")

    @classmethod
    def from_entries(
        cls, entries: Iterable[str], *, origin: str = "RK_API_KEYS"
    ) -> ApiKeyAuthenticator:
        return cls(keys=parse_key_entries(entries, origin=origin))

    @classmethod
    def from_file(cls, path: str) -> ApiKeyAuthenticator:
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise ConfigurationError(
                f"cannot read the API key file {path!r}: {error.strerror}"
            ) from None
        return cls(keys=parse_key_entries(text.splitlines(), origin=path))

    @staticmethod
    def presented_key(connection: HTTPConnection) -> str | None:
        authorization = connection.headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        key = connection.headers.get("x-api-key", "").strip()
        return key or None

    async def authenticate(self, connection: HTTPConnection) -> Identity | None:
        key = self.presented_key(connection)
        if key is None:
            return None
        digest = _digest(key)
        match: ApiKeyEntry | None = None
        # Compare against every key, without stopping early, so timing reveals nothing.
        for candidate in self.keys:
            if hmac.compare_digest(candidate.digest, digest):
                match = candidate
        if match is None:
            raise PermissionDenied("api-key: the key presented is not accepted")
        return Identity(mode=self.mode, subject=match.id)
