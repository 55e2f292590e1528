"""Requests-per-minute and tokens-per-minute limits: token buckets refilled continuously.

Not aiolimiter: its bucket refuses an acquisition larger than its capacity, and one request's
tokens (a long prompt plus ``max_tokens``) can exceed a second's worth of a TPM budget. Here a
large acquisition waits until the bucket is full and then leaves it in debt, which later
acquisitions pay back: over any minute the budget holds. The capacity is one second's worth, so
a run starts with a small burst rather than a minute's worth at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["TokenBucket", "estimate_tokens"]


class TokenBucket:
    """``per_minute`` units a minute; waiters are served in order (FIFO)."""

    def __init__(
        self,
        *,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` may be spent, then spend it."""
        async with self._lock:  # held while waiting: the next waiter is served next
            self._refill()
            needed = min(amount, self.capacity)
            if self.level < needed:
                await self._sleep((needed - self.level) / self.rate)
                self._refill()
                # Slept for exactly the deficit: a refill that lands a rounding error short
                # must not send it back to sleep for ever smaller amounts.
                self.level = max(self.level, needed)
            self.level -= amount

    def settle(self, estimated: float, actual: float) -> None:
        """Correct an acquisition made on an estimate once the real amount is known."""
        self.level = min(self.capacity, self.level + estimated - actual)


def estimate_tokens(body_bytes: int, max_tokens: int | None) -> float:
    """A request's tokens before it is sent: about 4 bytes a token for the prompt, plus the
    reply's limit (or a guess of 256 when there is none); settled with the real usage."""
    return body_bytes / 4.0 + (max_tokens if max_tokens is not None else 256)
