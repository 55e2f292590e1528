"""A pebble pool manager that reads a dead worker's last messages before failing its task,
and whose pipes hold a whole chunk."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

# Room in each of the pool's two pipes (the kernel's default is 64 KiB, Linux's ceiling for an
# unprivileged process 1 MiB; pages are taken as they are used). The results of a chunk of 500
# trivial items are about 100 KiB: with the default, the worker wrote a part, waited for the
# server's reader thread to drain it, and wrote the rest, two more wake-ups in this VM.
PIPE_BYTES = 1 << 20

__all__ = ["drain_before_expiring"]


def drain_before_expiring(pool: Any, context: Any) -> None:
    """Give ``pool`` a pool manager that reads a dead worker's last messages before failing its
    task.

    pebble reads the workers' messages (``Acknowledgement``: worker W took task T; results) on
    one thread and notices dead workers on another. A reward that dies as soon as it starts
    (``os._exit``, a segfault) can be noticed before its acknowledgement is read: pebble then
    finds no task to fail, reads the acknowledgement later, and the task waits for its hard
    deadline to come back as a *timeout* (or, if nothing else was running, the whole pool
    breaks). Likewise a result still in the pipe when its worker dies gets reported as a crash.
    Deferring the expiry to the message thread until the pipe is empty fixes both: everything
    the worker sent before it died has then been read. Left as is if pebble's internals differ.
    """
    manager: Any = getattr(pool, "_pool_manager", None)
    needed = ("handle_worker_expiration", "process_next_message", "start", "worker_manager")
    if manager is None or not all(hasattr(manager, name) for name in needed):
        return
    pool._pool_manager = _draining_manager(type(manager))(pool._context, context)


def _draining_manager(base: type) -> type:
    class DrainingPoolManager(base):  # type: ignore[misc]
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self._deaths: list[tuple[int, int | None]] = []
            self._deaths_lock = threading.Lock()

        def start(self) -> None:
            super().start()  # creates the pipes, then the workers
            widen_pipes(self.worker_manager.pool_channel)

        def handle_worker_expiration(self, expiration: tuple[int, int | None]) -> None:
            with self._deaths_lock:  # the pool manager thread: only note it
                self._deaths.append(expiration)

        def process_next_message(self, timeout: float) -> None:
            super().process_next_message(timeout)  # the message thread
            with self._deaths_lock:
                deaths, self._deaths = self._deaths, []
            if deaths and self._pending_messages():
                with self._deaths_lock:  # not drained yet: after the next message
                    self._deaths[:0] = deaths
                return
            for expiration in deaths:
                super().handle_worker_expiration(expiration)

        def _pending_messages(self) -> bool:
            try:
                return bool(self.worker_manager.pool_channel.poll(0))
            except (OSError, ValueError):  # the pool is stopping and closed its pipes
                return False

    return DrainingPoolManager


def widen_pipes(channel: Any) -> None:
    """Give the pipes behind a pebble channel room for :data:`PIPE_BYTES` (Linux); a pipe
    that cannot grow keeps its size."""
    try:
        import fcntl

        grow = fcntl.F_SETPIPE_SZ  # type: ignore[attr-defined,unused-ignore]
    except (ImportError, AttributeError):  # not Linux
        return
    for end in (getattr(channel, "reader", None), getattr(channel, "writer", None)):
        with contextlib.suppress(OSError, AttributeError, ValueError):
            fcntl.fcntl(end.fileno(), grow, PIPE_BYTES)  # type: ignore[union-attr]
