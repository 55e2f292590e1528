"""Observability: Prometheus metrics, request ids, and structured (JSON) logs.

Each app gets its own metrics registry (no global state, so several apps can live in one
process, as in tests). Request id and caller identity travel in context variables, so every log
line written while a request is handled carries them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "JsonFormatter",
    "Metrics",
    "RequestContextMiddleware",
    "configure_logging",
    "current_identity",
    "current_request_id",
]

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "rk_request_id", default=""
)
current_identity: contextvars.ContextVar[str] = contextvars.ContextVar("rk_identity", default="")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_logger = logging.getLogger("reward_kit.access")


class Metrics:
    """The evaluator's metrics, in a registry of their own.

    >>> metrics = Metrics()
    >>> metrics.items.labels(function="exact", status="ok").inc()
    >>> b"rk_items_total" in metrics.render()[0]
    True
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rk_requests",
            "HTTP requests by route and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rk_request_duration_seconds",
            "HTTP request latency by route and function",
            ["route", "function"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.items = Counter(
            "rk_items",
            "Evaluated items by function and status (ok, error, timeout, ...)",
            ["function", "status"],
            registry=self.registry,
        )
        self.item_duration = Histogram(
            "rk_item_duration_seconds",
            "Reward function run time per item",
            ["function"],
            registry=self.registry,
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
        )
        self.in_flight = Gauge(
            "rk_in_flight_requests", "Requests being evaluated", registry=self.registry
        )
        self.workers = Gauge("rk_pool_workers", "Worker processes", registry=self.registry)
        self.busy = Gauge(
            "rk_pool_busy_tasks",
            "Tasks running or queued in the worker pool",
            registry=self.registry,
        )
        self.queue = Gauge(
            "rk_pool_queue_depth", "Tasks waiting for a free worker", registry=self.registry
        )

        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: prometheus_client takes a lock and rebuilds the
        key on every call, which was a tenth of a trivial request's cost."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def track_pool(self, workers: int, pending: Callable[[], int]) -> None:
        self.workers.set(workers)
        self.busy.set_function(lambda: float(pending()))
        self.queue.set_function(lambda: float(max(0, pending() - workers)))

    def observe_outcomes(self, function: str, outcomes: list[Any]) -> None:
        statuses: dict[str, int] = {}
        for outcome in outcomes:
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        for status, count in statuses.items():
            self.child(self.items, function, status).inc(count)
        durations = self.child(self.item_duration, function)
        for outcome in outcomes:
            if outcome.status == "ok":
                durations.observe(outcome.duration_ms / 1000)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


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
        status = 500

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
        finally:
            elapsed = time.perf_counter() - start
            route = self._route_of(scope)
            if self.metrics is not None and route != "/metrics":
                # Labels only from bounded sets: a client choosing methods or function names
                # must not be able to grow the registry without limit.
                function = scope.get("path_params", {}).get("name", "")
                function = function if function in self.functions else ""
                method = scope["method"] if scope["method"] in _METHODS else "other"
                self.metrics.child(self.metrics.requests, method, route, str(status)).inc()
                self.metrics.child(self.metrics.latency, route, function).observe(elapsed)
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
            scope["path"],
            status,
            elapsed * 1000,
            extra={
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "identity": str(identity) if identity else "",
                "route": route,
            },
        )


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        if not getattr(record, "identity", ""):
            record.identity = current_identity.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, identity, extras."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_") and value not in ("", None):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(*, level: str, fmt: str) -> None:
    """Set up the root logger for ``rk serve`` (never called on import)."""
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
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
