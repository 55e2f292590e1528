"""The client-side credential seam: every credential is an ``httpx.Auth`` that may also
adjust how the HTTP client is built (mutual TLS sets ``verify=`` to an SSL context)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

__all__ = ["ApiKey", "Credential"]


class Credential(httpx.Auth):
    """Base class of reward-kit credentials."""

    def client_options(self) -> dict[str, Any]:
        """Extra keyword arguments for ``httpx.Client``/``AsyncClient`` (none by default)."""
        return {}


class ApiKey(Credential):
    """Send ``Authorization: Bearer <key>`` (or another header) on every request.

    >>> ApiKey("rk_0123456789abcdef").header
    'Authorization'
    """

    def __init__(self, key: str, *, header: str = "Authorization") -> None:
        if not key:
            raise ValueError("ApiKey needs a non-empty key")
        self._key = key
        self.header = header

    def __repr__(self) -> str:
        return f"ApiKey(header={self.header!r}, key=<redacted>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        value = f"Bearer {self._key}" if self.header.lower() == "authorization" else self._key
        request.headers[self.header] = value
        yield request
