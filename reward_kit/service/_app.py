"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from .._errors import InvalidRequest, LoadError, RewardKitError
from .._function import RewardFunction
from .._loader import load_functions
from .._version import __version__
from ..engine import Engine
from ._env_routes import add_env_routes, env_sessions
from ._hosts import HostMiddleware, HostPolicy
from ._loop_lag import monitor_loop_lag
from ._metrics import Metrics
from ._observability import RequestContextMiddleware
from ._openrlhf import add_openrlhf_route
from ._routes import Service, error_response
from ._schemas import REQUEST_BODIES, RESPONSES, component_schemas, with_name
from ._settings import ServeSettings
from .auth import Authenticator, AuthMiddleware, build_authenticators

__all__ = ["create_app"]

logger = logging.getLogger("reward_kit.server")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def create_app(
    targets: Iterable[str] = (),
    *,
    functions: Sequence[RewardFunction[Any]] | Mapping[str, RewardFunction[Any]] = (),
    settings: ServeSettings | None = None,
    authenticators: Sequence[Authenticator] | None = None,
) -> FastAPI:
    """Build the evaluator app for reward targets (``file.py``, ``pkg.mod:fn``...) or functions.

    >>> app = create_app(["examples/quickstart/rewards.py"])  # doctest: +SKIP
    >>> # uvicorn.run(app) - or `rk-serve examples/quickstart/rewards.py`

    The worker pool starts with the app's lifespan and stops with it.
    """
    settings = settings or ServeSettings(targets=tuple(targets))
    sessions = env_sessions(settings, [*settings.targets, *targets])
    registry = _registry([*settings.targets, *targets], functions, envs=sessions is not None)
    if authenticators is None:
        authenticators = build_authenticators(settings)
    engine = Engine(
        functions=registry,
        workers=settings.workers,
        memory_limit_mb=settings.memory_limit_mb,
        max_tasks_per_worker=settings.max_tasks_per_worker,
        max_processes=settings.max_processes,
        worker_env_drop=settings.worker_env_drop,
        log_format=settings.log_format,
    )
    metrics = Metrics() if settings.metrics else None
    if metrics is not None:
        metrics.track_pool(engine.workers, engine.pending_tasks)
    service = Service(functions=registry, engine=engine, settings=settings, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        if sessions is not None:
            await sessions.start()
        logger.info("serving %s with %d worker(s)", ", ".join(sorted(registry)), engine.workers)
        try:
            if metrics is None:
                yield
            else:
                async with monitor_loop_lag(metrics.loop_lag.observe):
                    yield
        finally:
            if sessions is not None:
                await sessions.close()
            await engine.close()

    app = FastAPI(
        title="reward-kit evaluator",
        version=__version__,
        lifespan=lifespan,
        description="Reward functions served over HTTP. See docs/http-api.md.",
    )
    app.state.service = service
    _routes(app, service)
    if sessions is not None:
        add_env_routes(app, service, sessions)
    _error_handlers(app)
    _openapi(app)
    if authenticators:
        app.add_middleware(
            AuthMiddleware,
            authenticators=authenticators,
            failure_limit=settings.auth_failure_limit,
            failure_window=settings.auth_failure_window,
        )
    # Without auth, only loopback Hosts (and those listed) are answered: DNS rebinding.
    hosts = HostPolicy(settings.allowed_hosts)
    if (settings.allowed_hosts or not authenticators) and not hosts.any:
        app.add_middleware(HostMiddleware, policy=hosts)
    # Outermost: every request gets an id, a metric and an access-log line, refused ones too.
    app.add_middleware(
        RequestContextMiddleware, metrics=metrics, routes=app.router.routes, functions=registry
    )
    return app


def _registry(
    targets: Iterable[str],
    functions: Sequence[RewardFunction[Any]] | Mapping[str, RewardFunction[Any]],
    *,
    envs: bool = False,
) -> dict[str, RewardFunction[Any]]:
    given = list(functions.values()) if isinstance(functions, Mapping) else list(functions)
    unique_targets = list(dict.fromkeys(targets))
    registry = load_functions(unique_targets, allow_none=envs) if unique_targets else {}
    for fn in given:
        if fn.name in registry and registry[fn.name] is not fn:
            raise RewardKitError(f"two reward functions are named {fn.name!r}")
        registry[fn.name] = fn
    if not registry and not envs:
        raise LoadError("no reward functions or environments to serve: give targets or functions")
    return registry


def _routes(app: FastAPI, service: Service) -> None:
    def options(kind: str, path: str) -> dict[str, Any]:
        extra = REQUEST_BODIES[kind]
        return {
            "openapi_extra": with_name(extra) if "{name}" in path else extra,
            "responses": RESPONSES[kind],
        }

    meta = [("/health", service.health, True), ("/functions", service.list_functions, True)]
    if service.metrics is not None:
        meta.append(("/metrics", service.render_metrics, False))
    for path, endpoint, documented in meta:
        app.add_api_route(
            path, endpoint, methods=["GET"], tags=["meta"], include_in_schema=documented
        )
        # HEAD answers like GET without the body (RFC 9110); a route of its own because one
        # route with both methods would give the OpenAPI document a duplicate operation id.
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)
    # /fn/{name} is a per-function base URL: upstream reward-kit's Fireworks shim posts to the
    # URL as registered, and its `preview --remote-url URL` to URL + "/evaluate" (compat.md).
    single = ("/evaluate", "/evaluate/{name}", "/fn/{name}", "/fn/{name}/evaluate")
    hot = [
        *((path, service.evaluate, "evaluate") for path in single),
        ("/reward", service.evaluate, "evaluate"),
        *(
            (path, service.batch_evaluate, "batch")
            for path in ("/batch_evaluate", "/batch_evaluate/{name}")
        ),
    ]
    for path, endpoint, kind in hot:
        app.add_api_route(
            path, endpoint, methods=["POST"], tags=["evaluate"], **options(kind, path)
        )
    # The evaluation endpoints are served by plain Starlette routes placed ahead of the FastAPI
    # ones, which stay for the OpenAPI document. The handlers take the raw Request and validate
    # themselves, so FastAPI's per-request dependency solving would only add cost: about 30 us,
    # a quarter of a trivial /evaluate (docs/benchmarks.md).
    app.router.routes[:0] = [_ServedRoute(path, endpoint) for path, endpoint, _ in hot]
    add_openrlhf_route(app, service)


class _ServedRoute(Route):
    """A POST route that, like FastAPI's, records itself in the scope (for metric labels)."""

    def __init__(self, path: str, endpoint: Any) -> None:
        super().__init__(path, endpoint, methods=["POST"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def _error_handlers(app: FastAPI) -> None:
    async def reward_kit_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RewardKitError)
        response = error_response(error)
        if error.status >= 500:
            logger.warning("%s %s -> %s: %s", request.method, request.url.path, error.code, error)
        return response

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        code = _HTTP_CODES.get(error.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {error.detail}"
        response = error_response(RewardKitError(message, code=code, status_code=error.status_code))
        for name, value in (error.headers or {}).items():
            response.headers[name] = value  # e.g. Allow on 405, as RFC 9110 requires
        return response

    async def validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return error_response(InvalidRequest(problems))

    async def unexpected(request: Request, error: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(RewardKitError("internal server error; see the server log"))

    app.add_exception_handler(RewardKitError, reward_kit_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


def _openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                component_schemas()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
