"""Running reward calls on daemon threads, a bounded number at a time.

Why not ``concurrent.futures.ThreadPoolExecutor``: its worker threads are joined when the
interpreter exits, so one reward stuck in ``time.sleep(10**6)`` would keep the server from ever
exiting (on SIGTERM, in tests). A thread cannot be killed; a daemon thread at least cannot hold
the process hostage. A slot is freed only when its thread really returns, so hung calls count
against the bound instead of piling up unbounded threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._outcome import describe_exception

__all__ = ["DaemonThreads"]

T = TypeVar("T")


class DaemonThreads:
    """``await threads.run(func, *args)`` runs ``func`` on a fresh daemon thread.

    >>> async def main():
    ...     return await DaemonThreads(limit=2).run(sum, [1, 2])
    >>> asyncio.run(main())
    3
    """

    def __init__(self, *, limit: int, name: str = "rk-reward") -> None:
        self.limit = limit
        self.name = name
        self._slots: asyncio.Semaphore | None = None
        self.running = 0

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        await slots.acquire()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            slots.release()
            if future.done():  # the caller stopped waiting (deadline, cancellation)
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def target() -> None:
            try:
                result = func(*args)
            except BaseException as error:
                # Never hand the event loop a SystemExit or KeyboardInterrupt: re-raised
                # there, it would stop the whole server.
                if not isinstance(error, Exception):
                    wrapped = RuntimeError(describe_exception(error))
                    wrapped.__cause__ = error
                    error = wrapped
                loop.call_soon_threadsafe(settle, None, error)
            else:
                loop.call_soon_threadsafe(settle, result, None)

        threading.Thread(target=target, name=self.name, daemon=True).start()
        return await future
