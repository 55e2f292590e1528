"""Observability: request ids, per-request metrics (recorded in ``_metrics``), and logs (text
or JSON) that no client can forge lines into.

Request id and caller identity travel in context variables, so every log line written while a
request is handled carries them.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import time
from collections.abc import Collection, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import RewardKitError
from .._escaping import escape
from ._error_response import render_error
from ._metrics import Metrics

__all__ = [
    "JsonFormatter",
    "RequestContextMiddleware",
    "TextFormatter",
    "configure_logging",
    "current_identity",
    "current_request_id",
    "escape",
]

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "rk_request_id", default=""
)
current_identity: contextvars.ContextVar[str] = contextvars.ContextVar("rk_identity", default="")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_logger = logging.getLogger("reward_kit.access")
logger = logging.getLogger("reward_kit.server")


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID``, kept when the caller sends a sane one),
    counts and times it (also in a ``Server-Timing`` header), and writes one access-log line
    with the caller's identity."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None,
        routes: Sequence[BaseRoute] = (),
        functions: Collection[str] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.functions = frozenset(functions)

    def _route_of(self, scope: Scope) -> str:
        """The route template, also for requests refused before routing (auth, limits), so
        metric labels stay bounded whatever paths clients send."""
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", "unmatched"))
        for candidate in self.routes:
            if candidate.matches(scope)[0] is Match.FULL:
                return str(getattr(candidate, "path", "unmatched"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = incoming.decode("latin-1") if incoming else ""
        if not _SAFE_ID.match(request_id):
            request_id = os.urandom(16).hex()
        token = current_request_id.set(request_id)
        identity_token = current_identity.set("")
        start = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                # Server-Timing lets a client tell server time from network time.
                server_ms = (time.perf_counter() - start) * 1000
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                    (b"server-timing", f"app;dur={server_ms:.3f}".encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when --shutdown-grace is over (a Cloud Run scale-in,
            # a rolling deploy); its own answer would be a text/plain 500 nobody retries. The
            # task has nothing left to do once this answer is sent, so the cancellation ends here.
            if status:
                raise
            logger.warning("shutting down: %s %s stopped", scope["method"], escape(scope["path"]))
            await _send_json(send_with_id, 503, _SHUTTING_DOWN, retry_after=True)
        except Exception:
            raise  # answered (JSON) by the app's error handlers, outside this middleware
        except BaseException:
            if not status:
                await _send_json(send_with_id, 500, _INTERNAL)
            raise
        finally:
            status = status or 500
            elapsed = time.perf_counter() - start
            route = self._route_of(scope)
            if self.metrics is not None and route != "/metrics":
                # Labels only from bounded sets: a client choosing methods or function names
                # must not be able to grow the registry without limit.
                function = scope.get("path_params", {}).get("name", "")
                function = function if function in self.functions else ""
                method = scope["method"] if scope["method"] in _METHODS else "other"
                self.metrics.count_request(method, route, status, function, elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                self._log(scope, status, elapsed, route)
            current_identity.reset(identity_token)
            current_request_id.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, elapsed: float, route: str) -> None:
        identity = scope.get("state", {}).get("identity")
        access_logger.info(
            "%s %s %d %.1fms",
            scope["method"],
            escape(scope["path"]),
            status,
            elapsed * 1000,
            extra={
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "identity": str(identity) if identity else "",
                "route": route,
            },
        )


_SHUTTING_DOWN = {
    "code": "shutting_down",
    "message": "the server is shutting down and stopped this request before it finished; "
    "retry it (another instance, or this one once restarted, will answer)",
}
_INTERNAL = {"code": "internal_error", "message": "internal server error; see the server log"}


async def _send_json(
    send: Send, status: int, error: dict[str, str], *, retry_after: bool = False
) -> None:
    rendered = RewardKitError(
        error["message"], code=error["code"], status_code=status, retry_after=retry_after or None
    )
    status, headers, body = render_error(rendered, close=True)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        if not getattr(record, "identity", ""):
            record.identity = current_identity.get()
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, one line per record whatever the message holds; a
    traceback follows indented, so none of its lines can pass for a record of its own."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record)} {record.levelname} {escape(record.name)}: "
            f"{escape(record.getMessage())}"
        )
        details = []
        if record.exc_info:
            details.append(self.formatException(record.exc_info))
        if record.stack_info:
            details.append(self.formatStack(record.stack_info))
        for block in details:
            line += "".join(f"\n    {escape(part)}" for part in block.splitlines())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, identity, extras.

    String fields are escaped like the text log's, so a field read back holds no control
    characters either; only ``exception`` keeps its line breaks (JSON-escaped in the line).
    """

    # uvicorn's color_message repeats the message with ANSI colours.
    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": escape(record.name),
            "message": escape(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_") and value not in ("", None):
                payload[key] = escape(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=lambda value: escape(str(value)))


def configure_logging(*, level: str, fmt: str) -> None:
    """Set up the root logger for ``rk serve`` (never called on import)."""
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = TextFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    # Our access log carries the request id and identity; uvicorn's would repeat it without.
    logging.getLogger("uvicorn.access").disabled = True
