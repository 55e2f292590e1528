"""The client-side credential seam: every credential is an ``httpx.Auth`` that may also
adjust how the HTTP client is built (mutual TLS sets ``verify=`` to an SSL context)."""

from __future__ import annotations

import abc
import base64
import json
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import anyio.to_thread
import httpx

__all__ = ["ApiKey", "Combined", "Credential", "NoAuth", "TokenCredential"]


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


class NoAuth(Credential):
    """Send no credential, explicitly: without it a client given no ``auth`` uses
    :func:`~reward_kit.sdk.auth.default_credential` (``RK_API_KEY``, ``auth.ini``...).

    >>> EvaluatorClient("http://127.0.0.1:8000", auth=NoAuth())  # doctest: +SKIP
    """

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield request

    def __repr__(self) -> str:
        return "NoAuth()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoAuth)

    def __hash__(self) -> int:
        return hash(NoAuth)


def token_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT, unverified (only to know when to fetch a new one)."""
    try:
        payload = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
        return float(exp)
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class TokenCredential(Credential, abc.ABC):
    """A bearer token fetched by blocking code and cached until ``refresh_margin`` seconds
    before it expires; async clients fetch it in a worker thread, not on the event loop."""

    refresh_margin = 60.0
    # The clock tokens expire by; a test may replace it on an instance.
    clock: Callable[[], float] = staticmethod(time.time)
    # Attributes rebuilt after unpickling (or, like ``clock``, left to the class default).
    _unpicklable: tuple[str, ...] = ("_lock", "clock")

    def __init__(self, *, header: str = "Authorization") -> None:
        self.header = header
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, float]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # TRL and verl/Ray pickle reward functions holding a credential: locks, modules and
        # sessions do not pickle, and a cached token must not travel to another process.
        state = {k: v for k, v in self.__dict__.items() if k not in self._unpicklable}
        state["_cache"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @abc.abstractmethod
    def _fetch(self, request: httpx.Request) -> tuple[str, float]:
        """A new token for ``request`` and its expiry (epoch seconds)."""

    def _cache_key(self, request: httpx.Request) -> str:
        return ""

    def token(self, request: httpx.Request) -> str:
        key = self._cache_key(request)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1] - self.refresh_margin > self.clock():
                return cached[0]
            token, expires = self._fetch(request)
            self._cache[key] = (token, expires)
            return token

    def _apply(self, request: httpx.Request, token: str) -> None:
        request.headers[self.header] = f"Bearer {token}"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        self._apply(request, self.token(request))
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self._apply(request, await anyio.to_thread.run_sync(self.token, request))
        yield request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(header={self.header!r})"


class Combined(Credential):
    """Several credentials on one client, e.g. mutual TLS plus an API key, or an API key in
    ``Authorization`` plus a Google ID token in ``X-Serverless-Authorization`` (Cloud Run).

    >>> both = Combined(ApiKey("rk_0123456789abcdef", header="X-Api-Key"), ApiKey("x" * 16))
    >>> len(both.credentials)
    2

    Each part must send its request once (all reward-kit credentials do).
    """

    def __init__(self, *credentials: httpx.Auth) -> None:
        if not credentials:
            raise ValueError("Combined needs at least one credential")
        self.credentials = credentials
        self.requires_request_body = any(c.requires_request_body for c in credentials)

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for credential in self.credentials:
            if isinstance(credential, Credential):
                options.update(credential.client_options())
        return options

    @staticmethod
    def _single(flow: Generator[httpx.Request, httpx.Response, None]) -> None:
        next(flow)
        flow.close()

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        for credential in self.credentials:
            self._single(credential.sync_auth_flow(request))
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        for credential in self.credentials:
            flow = credential.async_auth_flow(request)
            await flow.__anext__()
            await flow.aclose()
        yield request

    def __repr__(self) -> str:
        return f"Combined({', '.join(repr(c) for c in self.credentials)})"
