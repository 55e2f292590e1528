"""Event loops on their own threads, for async rewards: never the server's loop.

An async reward that blocks (``time.sleep``, a CPU loop, a synchronous client) would freeze
everything on the loop it runs on. Each async function gets a loop of its own on a daemon
thread, so it can only freeze itself; rewards that share a client created in ``setup`` still
share one loop. A loop that stays blocked past a call's deadline is abandoned: the calls after
it get a fresh loop, and the stuck thread is left to finish (a thread cannot be killed; a
daemon one cannot hold the process at exit).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "LoopThreads"]

T = TypeVar("T")


class LoopThread:
    """One event loop running forever on a daemon thread."""

    def __init__(self, *, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.beat = time.monotonic()  # last time the loop got to run a callback
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._heartbeat)
        try:
            self.loop.run_forever()
        finally:
            _close(self.loop)

    def _heartbeat(self) -> None:
        self.beat = time.monotonic()
        self.loop.call_later(0.05, self._heartbeat)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stuck_for(self) -> float:
        """Seconds since the loop last ran a callback (0 when it is keeping up)."""
        return max(0.0, time.monotonic() - self.beat - 0.05)

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)


class LoopThreads:
    """A loop thread per async function, replaced when it stays blocked past a deadline."""

    def __init__(self) -> None:
        self._loops: dict[str, LoopThread] = {}
        self._lock = threading.Lock()

    def for_function(self, name: str) -> LoopThread:
        with self._lock:
            loop = self._loops.get(name)
            if loop is None:
                loop = self._loops[name] = LoopThread(name=f"rk-async-{name}")
            return loop

    def abandon_if_stuck(self, name: str, seconds: float) -> bool:
        """After a timeout: replace ``name``'s loop if it has not run for ``seconds``."""
        with self._lock:
            loop = self._loops.get(name)
            if loop is None or loop.stuck_for() < seconds:
                return False
            del self._loops[name]
        loop.stop()  # runs once the blocking call returns; the thread then ends
        return True

    def close(self) -> None:
        with self._lock:
            loops, self._loops = list(self._loops.values()), {}
        for loop in loops:
            loop.stop()


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left (calls abandoned at their deadline) and close the loop."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:  # a task that swallows its cancellation is given a second, then dropped
        loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
    loop.close()
