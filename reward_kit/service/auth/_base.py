"""The authentication seam: authenticators, the caller's identity, and the middleware."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..._errors import AuthenticationError, PermissionDenied, RewardKitError

__all__ = ["AuthMiddleware", "Authenticator", "Identity", "OPEN_PATHS"]

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


class AuthMiddleware:
    """Requires one successful authenticator on every route except ``GET /health``."""

    def __init__(self, app: ASGIApp, *, authenticators: Sequence[Authenticator]) -> None:
        self.app = app
        self.authenticators = list(authenticators)
        self.modes = ", ".join(a.mode for a in self.authenticators)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        try:
            identity = await self._identify(connection)
        except RewardKitError as error:
            client = connection.client.host if connection.client else "?"
            logger.warning("auth failed from %s on %s: %s", client, scope["path"], error.message)
            await _send_error(send, error)
            return
        scope.setdefault("state", {})["identity"] = identity
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
        if refusals:
            raise refusals[0]
        raise AuthenticationError(f"this evaluator requires a credential ({self.modes})")


async def _send_error(send: Send, error: RewardKitError) -> None:
    body = orjson.dumps(error.to_payload())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="reward-kit"'))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
