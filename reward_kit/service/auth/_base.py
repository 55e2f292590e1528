"""The authentication seam: authenticators, the caller's identity, and the middleware."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..._errors import AuthenticationError, Overloaded, PermissionDenied, RewardKitError
from .._error_response import render_error
from .._observability import current_identity

__all__ = [
    "OPEN_PATHS",
    "AuthMiddleware",
    "Authenticator",
    "Authenticators",
    "FailureLimiter",
    "Identity",
    "bearer_token",
]

logger = logging.getLogger("reward_kit.auth")

# Liveness must answer for load balancers and orchestrators that hold no credential.
OPEN_PATHS = frozenset({("GET", "/health"), ("HEAD", "/health")})


@dataclass(frozen=True)
class Identity:
    """Who called: the auth mode that accepted them and a subject (never the credential)."""

    mode: str
    subject: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.mode}:{self.subject}"


class Authenticator(Protocol):
    """One auth mode. ``authenticate`` returns None when the request carries no credential of
    this mode, an :class:`Identity` when it carries a good one, and raises
    :class:`PermissionDenied` (or :class:`AuthenticationError`) when it carries a bad one."""

    mode: str

    async def authenticate(self, connection: HTTPConnection) -> Identity | None: ...


class Authenticators(list[Authenticator]):
    """The configured authenticators plus the failed-attempt policy the middleware applies.

    >>> Authenticators([], failure_limit=5).failure_limit
    5
    """

    def __init__(
        self,
        authenticators: Iterable[Authenticator] = (),
        *,
        failure_limit: int = 20,
        failure_window: float = 60.0,
    ) -> None:
        super().__init__(authenticators)
        self.failure_limit = failure_limit
        self.failure_window = failure_window


def bearer_token(connection: HTTPConnection, header: str = "authorization") -> str | None:
    """The token of ``<header>: Bearer <token>``, or None."""
    scheme, _, value = connection.headers.get(header, "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


class FailureLimiter:
    """Counts failed auth attempts per client address in a sliding window; past ``limit`` the
    address is refused (429) until its oldest failure leaves the window. Slows key guessing
    and keeps a flood of bad tokens from turning into a flood of STS calls.

    >>> limiter = FailureLimiter(limit=1, window=60)
    >>> limiter.record("10.0.0.1", now=0.0); limiter.retry_after("10.0.0.1", now=1.0)
    59.0
    """

    # Bounded memory: a spray from many addresses evicts the least recently failing ones.
    MAX_ADDRESSES = 10_000

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str, *, now: float | None = None) -> float | None:
        """Seconds until ``address`` may try again, or None when it may try now."""
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        times = self._recent(address, now)
        if times is None or len(times) < self.limit:
            return None
        return max(1.0, times[-self.limit] + self.window - now)

    def record(self, address: str, *, now: float | None = None) -> None:
        if self.limit <= 0:
            return
        now = time.monotonic() if now is None else now
        times = self._recent(address, now) or deque(maxlen=self.limit)
        times.append(now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self.MAX_ADDRESSES:
            self._failures.popitem(last=False)


class AuthMiddleware:
    """Requires one successful authenticator on every route except ``GET /health`` (websocket
    handshakes included: refused with close code 1008, which servers send as 403); logs the
    caller's identity (never the credential) and refuses addresses that keep failing."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticators: Sequence[Authenticator],
        failure_limit: int | None = None,
        failure_window: float | None = None,
    ) -> None:
        self.app = app
        self.authenticators = list(authenticators)
        self.modes = ", ".join(a.mode for a in self.authenticators)
        # The policy travels with the list build_authenticators returns, so create_app needs
        # no auth-specific arguments; explicit keywords win.
        if failure_limit is None:
            failure_limit = getattr(authenticators, "failure_limit", 20)
        if failure_window is None:
            failure_window = getattr(authenticators, "failure_window", 60.0)
        self.limiter = FailureLimiter(limit=failure_limit, window=failure_window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        # Lifespan carries no request; websockets are authenticated like HTTP (a route added
        # later, or by a plugin, must not be an open door).
        if kind not in ("http", "websocket") or (
            kind == "http" and (scope["method"], scope["path"]) in OPEN_PATHS
        ):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "WEBSOCKET")
        connection = HTTPConnection(scope)
        client = connection.client.host if connection.client else "unknown"
        wait = self.limiter.retry_after(client)
        if wait is not None:
            logger.debug("auth refused for %s: too many failed attempts", client)
            await _refuse(
                scope,
                receive,
                send,
                Overloaded(
                    f"too many failed authentication attempts from {client}; retry in {int(wait)}s",
                    retry_after=wait,
                ),
            )
            return
        try:
            identity = await self._identify(connection)
        except RewardKitError as error:
            if isinstance(error, AuthenticationError | PermissionDenied):
                self.limiter.record(client)
            logger.warning("auth failed from %s on %s: %s", client, scope["path"], error.message)
            await _refuse(scope, receive, send, error)
            return
        logger.info("auth ok: %s from %s %s %s", identity, client, method, scope["path"])
        scope.setdefault("state", {})["identity"] = identity
        current_identity.set(str(identity))
        await self.app(scope, receive, send)

    async def _identify(self, connection: HTTPConnection) -> Identity:
        refusals: list[RewardKitError] = []
        for authenticator in self.authenticators:
            try:
                identity = await authenticator.authenticate(connection)
            except (PermissionDenied, AuthenticationError) as error:
                refusals.append(error)
                continue
            if identity is not None:
                return identity
        if len(refusals) == 1:
            raise refusals[0]
        if refusals:
            # Say why every mode that saw a credential refused it, not just the first.
            message = "; ".join(r.message for r in refusals)
            if all(isinstance(r, PermissionDenied) for r in refusals):
                raise PermissionDenied(message)
            raise AuthenticationError(message)
        raise AuthenticationError(f"this evaluator requires a credential ({self.modes})")


async def _refuse(scope: Scope, receive: Receive, send: Send, error: RewardKitError) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the handshake with 403; 1008 is
        # "policy violation" for servers that report the code.
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008, "reason": error.message[:120]})
        return
    await _send_error(send, error)


async def _send_error(send: Send, error: RewardKitError) -> None:
    status, headers, body = render_error(error)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
