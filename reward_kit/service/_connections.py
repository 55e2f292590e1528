"""Connection guards for uvicorn: deadlines for a request's headers, body and answer, a cap on
open connections, and JSON for the errors uvicorn writes itself.

uvicorn (0.54) only times out idle keep-alive connections. A client that never finishes its
headers, stops halfway through a body or never reads the answer holds its connection, and a
file descriptor, for as long as it likes; at the open-file limit the server accepts nobody,
``/health`` included. These protocol subclasses add:

* a deadline for a request's headers, from the connection's start or the previous answer
  (``--header-timeout``), and a cap on their size (64 KiB; httptools has none);
* a deadline for the body (``--body-timeout``; the handler answers 408 first, see _body.py,
  and this closes what is left) and the same one for a client to read the answer;
* a cap on open connections, fitted under the open-file limit (``--max-connections``): at the
  cap a new connection closes the one that has waited longest on its client, so stalled
  clients cannot lock out others; connections with a request being evaluated are kept;
* JSON bodies for uvicorn's own 400 on unparsable HTTP;
* the start of a graceful shutdown reported to the app (``on_drain``), so requests queued for
  an evaluation slot are answered 503 at once instead of when the grace runs out.

One timer per server checks every connection about once a second, so a request pays nothing
for the deadlines; only the header-size count runs per read (a few attribute reads). The
classes use uvicorn internals (``cycle``, ``pipeline``, ``connections``), hence the exact pin
and the tests in tests/security/test_http_slow_clients.py.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import resource
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._errors import RewardKitError
from ._error_response import error_head

__all__ = ["ConnectionLimits", "fit_connections", "guarded_protocol_class"]

logger = logging.getLogger("reward_kit.server")

MAX_HEADER_BYTES = 64 * 1024
_SWEEP_SECONDS = 1.0
# The handler answers a late body with a 408; this closes the connection a little later.
_BODY_GRACE = 2.0


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_connections: int


class _Phase(enum.Enum):
    WAITING = "waiting for a request"  # headers not (all) there yet, or idle after an answer
    BODY = "reading the body"
    SERVING = "evaluating"
    SENDING = "sending the answer"


def fit_connections(
    limits: ConnectionLimits, *, workers: int, sessions: int = 0
) -> ConnectionLimits:
    """``limits`` with ``max_connections`` under the open-file limit, raising the soft limit
    toward the hard one when that is allowed, so the server never runs out of descriptors.
    ``sessions`` is ``--env-max-sessions`` when environments are served, else 0."""
    reserve = 64 + 8 * workers  # worker pipes (2 each, twice while one is replaced), logs...
    if sessions:
        # A session holds its socket and its pidfd; the fork server, its control socket and
        # the two descriptors of a spawn in progress.
        reserve += 2 * sessions + 4
    wanted = limits.max_connections + reserve
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return limits
    fitted = max(8, soft - reserve)
    logger.warning(
        "--max-connections %d lowered to %d to fit the open-file limit (ulimit -n %d)",
        limits.max_connections,
        fitted,
        soft,
    )
    return ConnectionLimits(
        header_timeout=limits.header_timeout,
        body_timeout=limits.body_timeout,
        max_connections=fitted,
    )


def guarded_protocol_class(
    limits: ConnectionLimits,
    base: type[Any] | None = None,
    *,
    on_drain: Callable[[], None] | None = None,
) -> type[Any]:
    """A uvicorn HTTP protocol class (``base``, default httptools' or h11's) with the guards;
    ``on_drain`` is called when a graceful shutdown starts (any number of times)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    if base is None:
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

            base = HttpToolsProtocol
        except ImportError:
            base = H11Protocol

    mixin = _H11Guard if issubclass(base, H11Protocol) else _HttpToolsGuard
    attributes = {"limits": limits, "on_drain": staticmethod(on_drain or _nothing)}
    return type(f"{base.__name__}WithGuards", (mixin, base), attributes)


def _nothing() -> None:
    pass


class _Guard:
    """The guards, over either uvicorn HTTP protocol (the attributes below are uvicorn's)."""

    limits: ConnectionLimits
    on_drain: Callable[[], None]
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    connections: set[Any]
    server_state: Any
    cycle: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        now = self.loop.time()
        self._rk_key: tuple[_Phase, Any] = (_Phase.WAITING, None)
        self._rk_since = now
        self._rk_header_bytes = 0
        _sweeper(self.server_state, self.loop).start()
        if len(self.connections) > self.limits.max_connections:
            self._make_room(now)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            self._rk_header_bytes = 0
            return
        # Between requests: this is the next request's headers (or the unread rest of a body
        # that was answered without reading it, which is no reason to keep reading either).
        self._rk_header_bytes += len(data)
        if self._rk_header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            if self._partial_request():
                message = f"the request headers are over {MAX_HEADER_BYTES} bytes"
                self._refuse(431, "headers_too_large", message)
            else:
                self.transport.close()

    def shutdown(self) -> None:
        # uvicorn calls this on every open connection as its graceful shutdown begins: the
        # one moment the app can learn of it before the grace is over.
        self.on_drain()
        super().shutdown()  # type: ignore[misc]

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "invalid_http", f"the request is not valid HTTP/1.1 ({msg.rstrip('.')})")

    # -- the sweep ---------------------------------------------------------------------------

    def _phase(self) -> _Phase:
        cycle = self.cycle
        # uvicorn hands the transport a whole answer at once: what the client has not read
        # waits in the transport's buffer, after the response is "complete" (and after close).
        if self.transport.get_write_buffer_size():
            return _Phase.SENDING
        if cycle is None or cycle.response_complete:
            return _Phase.WAITING
        if cycle.response_started:
            return _Phase.SENDING
        if cycle.more_body and not getattr(self, "pipeline", None):
            return _Phase.BODY
        return _Phase.SERVING

    def _observe(self, now: float) -> _Phase:
        """The current phase; its start time is when a sweep first saw it (within a second)."""
        phase = self._phase()
        key = (phase, self.cycle)
        if key != self._rk_key:
            self._rk_key, self._rk_since = key, now
        return phase

    def _sweep(self, now: float) -> None:
        phase = self._observe(now)
        waited = now - self._rk_since
        if phase is _Phase.SENDING:
            if waited > self.limits.body_timeout:
                self.transport.abort()  # the client does not read: drop what waits for it
            return
        if self.transport.is_closing():
            return
        if phase is _Phase.WAITING and waited > self.limits.header_timeout:
            if self._partial_request():
                seconds = f"{self.limits.header_timeout:g}s"
                message = f"the request headers did not arrive within {seconds} (--header-timeout)"
                self._refuse(408, "request_timeout", message)
            else:
                self.transport.close()
        elif phase is _Phase.BODY and waited > self.limits.body_timeout + _BODY_GRACE:
            self.transport.close()

    def _make_room(self, now: float) -> None:
        """At the cap: close the connection that has waited longest on its client, preferring
        idle or header-less ones to bodies in progress, or else refuse this one."""
        victim, best = None, None
        for other in self.connections:
            if other is self or not isinstance(other, _Guard) or other.transport.is_closing():
                continue
            phase = other._observe(now)
            if phase is _Phase.WAITING or phase is _Phase.BODY:
                rank = (phase is _Phase.BODY, other._rk_since)
                if best is None or rank < best:
                    victim, best = other, rank
        if victim is None:
            message = "the server is at its connection limit (--max-connections); retry shortly"
            self._refuse(503, "too_many_connections", message, retry_after=True)
            return
        if victim._phase() is _Phase.WAITING and victim._partial_request():
            message = (
                "the server is at its connection limit (--max-connections) and closed this "
                "connection, the one that waited longest for its request; retry"
            )
            victim._refuse(503, "too_many_connections", message, retry_after=True)
        else:
            victim.transport.close()

    def _partial_request(self) -> bool:
        """Whether part of a next request has arrived (then a timeout gets an answer)."""
        raise NotImplementedError

    def _refuse(self, status: int, code: str, message: str, *, retry_after: bool = False) -> None:
        """Answer ``status`` with a JSON error outside any request cycle, and close."""
        self.transport.write(_raw_error(status, code, message, retry_after=retry_after))
        self.transport.close()


class _HttpToolsGuard(_Guard):
    scope: Any

    def _partial_request(self) -> bool:
        # httptools starts a new scope when a request's first bytes arrive.
        cycle = self.cycle
        return self.scope is not None and (cycle is None or cycle.scope is not self.scope)


class _H11Guard(_Guard):
    conn: Any

    def _partial_request(self) -> bool:
        return bool(self.conn.trailing_data[0])


class _Sweeper:
    """Checks a server's connections about once a second, while it has any."""

    def __init__(self, connections: set[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.connections = connections
        self.loop = loop
        self.running = False

    def start(self) -> None:
        if not self.running:
            self.running = True
            self.loop.call_later(_SWEEP_SECONDS, self.sweep)

    def sweep(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            if isinstance(connection, _Guard):
                connection._sweep(now)
        self.running = False
        if self.connections:
            self.start()


_SWEEPERS: weakref.WeakKeyDictionary[Any, _Sweeper] = weakref.WeakKeyDictionary()


def _sweeper(server_state: Any, loop: asyncio.AbstractEventLoop) -> _Sweeper:
    sweeper = _SWEEPERS.get(server_state)
    if sweeper is None or sweeper.loop is not loop:
        sweeper = _SWEEPERS[server_state] = _Sweeper(server_state.connections, loop)
    return sweeper


def _raw_error(status: int, code: str, message: str, *, retry_after: bool) -> bytes:
    error = RewardKitError(message, code=code, status_code=status, retry_after=retry_after or None)
    return error_head(error)
