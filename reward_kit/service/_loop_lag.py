"""How late the server's event loop runs its callbacks: the cost of anything that blocks it.

A reward that blocks the loop (an ``isolation="inline"`` one doing real work, say) delays every
request, ``/health`` included. This measures it: a task asks to wake after ``interval`` and
records how much later it actually woke (``rk_event_loop_lag_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

__all__ = ["monitor_loop_lag"]

INTERVAL = 0.1


@contextlib.asynccontextmanager
async def monitor_loop_lag(
    record: Callable[[float], None], *, interval: float = INTERVAL
) -> AsyncIterator[None]:
    """While the block runs, call ``record(seconds_late)`` about every ``interval``."""

    async def sample() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(interval)
            record(max(0.0, time.perf_counter() - start - interval))

    task = asyncio.get_running_loop().create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
