"""Run an app from ``create_app`` under uvicorn the way ``rk serve`` does: workers started
first, TLS, the connection guards, forwarded headers only from trusted proxies, and a clean
exit on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from .._errors import ConfigurationError
from .._extras import require
from ._connections import ConnectionLimits, fit_connections, guarded_protocol_class
from ._settings import ServeSettings
from .auth import uvicorn_tls_options

__all__ = ["run_server"]

_YOUNG_COLLECTION_EVERY = 50_000

logger = logging.getLogger("reward_kit.server")


def run_server(
    app: Any,
    settings: ServeSettings | None = None,
    *,
    announce: Callable[[], object] | None = None,
) -> None:
    """Serve ``app``, made by :func:`create_app`, with its settings until SIGTERM or Ctrl-C.

    ``settings``, if given, must be the app's: the app checks credentials against the same TLS
    and auth settings the server starts with.

    The workers are started before the server listens, so a reward that cannot load or set up
    raises here (a :class:`~reward_kit.RewardKitError` naming it) instead of failing in the
    app's lifespan; the lifespan finds the engine started and stops it on shutdown.
    ``announce`` is called once the workers are up, just before the server starts listening.

    >>> run_server(create_app(settings=ServeSettings(targets=("rewards.py",))))  # doctest: +SKIP
    """
    uvicorn = require("uvicorn", extra="server", feature="rk serve")
    service = app.state.service
    if settings is None:
        settings = service.settings
    elif settings != service.settings:
        raise ConfigurationError("run_server: settings differ from those the app was made with")
    engine = service.engine
    asyncio.run(engine.start())
    sessions = getattr(app.state, "env_sessions", None)  # served environments (_env_routes.py)
    options = _protocol_options(
        settings,
        workers=engine.workers,
        sessions=0 if sessions is None else sessions.max_sessions,
        on_drain=service.drain,
    )
    # What exists now (modules, the app, the loaded rewards) lives as long as the server:
    # frozen, the collector stops scanning it on every full collection, which cost a
    # 1,000-item batch about 2 ms of the event loop's 9 (docs/benchmarks.md). And young
    # objects are collected every 50,000 allocations, not 700: a 1,000-item batch holds some
    # 10,000 objects (the parsed body, the outcomes) while it runs, and the collections that
    # walked them again and again cost it 0.5-1 ms. What is freed does not change, only when.
    gc.freeze()
    young, *older = gc.get_threshold()
    gc.set_threshold(max(young, _YOUNG_COLLECTION_EVERY), *older)
    if announce is not None:
        announce()
    # uvicorn shuts down gracefully on SIGTERM, then restores this handler and re-raises the
    # signal: a graceful stop (Cloud Run, docker stop) should end with status 0, not -15.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Rewards in threads (--workers 0, isolation="thread") share this process: one calling
    # signal.alarm() (a library's timeout) would end it, since SIGALRM's default is to exit.
    signal.signal(signal.SIGALRM, _stray_alarm)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # keep the logging set up by configure_logging (JSON, request ids)
        timeout_graceful_shutdown=settings.shutdown_grace,
        # X-Forwarded-For from anyone (uvicorn trusts loopback by default) would let a client
        # pick the address the auth limiter and the logs see.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=list(settings.forwarded_allow_ips) or None,
        ws="none",  # no WebSocket routes: an upgrade gets plain HTTP answers
        **options,
    )


def _stray_alarm(signum: int, frame: object) -> None:
    logger.warning(
        "SIGALRM reached the server process (a reward called signal.alarm?); ignored. Rewards "
        "that need alarms belong in worker processes (isolation='process')"
    )


def _protocol_options(
    settings: ServeSettings,
    *,
    workers: int,
    sessions: int = 0,
    on_drain: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """uvicorn's TLS keywords and an ``http=`` protocol class with the connection guards
    (which call ``on_drain`` when a graceful shutdown starts); the open-file budget leaves
    room for ``sessions`` environment sessions."""
    options = uvicorn_tls_options(settings)
    limits = ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )
    limits = fit_connections(limits, workers=workers, sessions=sessions)
    options["http"] = guarded_protocol_class(limits, options.get("http"), on_drain=on_drain)
    return options
