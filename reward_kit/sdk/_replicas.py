"""Several evaluator replicas behind one client: which replica gets each request, and their health.

A client given several URLs (a list, ``"http://a:8000,http://b:8000"``, or the same in
``RK_EVALUATOR_URL``) cuts a batch into one contiguous shard per healthy replica and sends single
requests round-robin. Health is passive: a replica that fails a request the client would retry
(connection error, 429, 502-504) cools down, and gets no new work until the cool-down ends
(doubling with each failure in a row, never shorter than its ``Retry-After``) unless every
replica is cooling. The failed request moves at once to a healthy replica; that move is one of
the ``max_retries``. I/O-free and thread-safe: both clients share it, as they share ``_core``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import ConfigurationError
from .._retry import backoff_delay

if TYPE_CHECKING:
    from ._core import ClientConfig, Failure

__all__ = ["EVALUATOR_URL_ENV", "Replicas", "split_urls"]

EVALUATOR_URL_ENV = "RK_EVALUATOR_URL"


def split_urls(
    value: str | Sequence[str] | None, *, environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The replica URLs of ``value``: a URL, URLs separated by commas, or a list of them; None
    reads ``RK_EVALUATOR_URL`` (same forms). Each must be http(s) and listed once.

    >>> split_urls("http://a:8000, http://b:8000/")
    ('http://a:8000', 'http://b:8000')
    """
    origin = "url"
    if value is None:
        env = os.environ if environ is None else environ
        value = env.get(EVALUATOR_URL_ENV, "")
        origin = EVALUATOR_URL_ENV
        if not value.strip():
            raise ConfigurationError(
                f"no evaluator URL: pass one (or a list) to the client, or set "
                f"{EVALUATOR_URL_ENV}=http://host:8000[,http://host2:8000...]"
            )
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, Sequence) and all(isinstance(part, str) for part in value):
        parts = list(value)
    else:
        raise TypeError(f"url: expected a URL, a comma-separated string or a list, got {value!r}")
    urls = tuple(part.strip().rstrip("/") for part in parts)
    if not urls or any(not url for url in urls):
        raise ValueError(f"{origin}: an empty URL in {value!r}")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{origin}: must start with http:// or https://, got {url!r}")
    repeated = sorted({url for url in urls if urls.count(url) > 1})
    if repeated:
        raise ValueError(f"{origin}: {', '.join(repeated)} listed more than once")
    return urls


@dataclass
class _Health:
    failures: int = 0  # failed requests in a row
    cool_until: float = 0.0  # no new work before this (unless every replica is cooling)
    floor_until: float = 0.0  # never a request before this: the replica's own Retry-After


class Replicas:
    """The health of one client's replicas, and the routing decisions made from it.

    >>> from reward_kit.sdk._core import ClientConfig
    >>> replicas = Replicas(ClientConfig(url="http://a:1,http://b:1"))
    >>> replicas.shards(5)
    [(0, range(0, 3)), (1, range(3, 5))]
    """

    def __init__(
        self, config: ClientConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.urls = config.urls
        self._clock = clock
        self._health = [_Health() for _ in self.urls]
        self._next = 0  # where the rotation starts next
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.urls)

    def _turn(self, candidates: list[int]) -> list[int]:
        """``candidates`` rotated by one more place each call: round-robin over whichever
        replicas are eligible, so none gets a double share when another is cooling."""
        start = self._next % len(candidates)
        self._next += 1
        return candidates[start:] + candidates[:start]

    def _healthy(self, now: float) -> list[int]:
        return [i for i, health in enumerate(self._health) if health.cool_until <= now]

    def shards(self, size: int) -> list[tuple[int, range]]:
        """``range(size)`` cut into contiguous, near-equal shards, one per healthy replica (per
        replica when none is healthy), as ``(replica, positions)`` in input order."""
        if size <= 0:
            return []
        with self._lock:
            targets = self._turn(self._healthy(self._clock()) or list(range(len(self.urls))))
        targets = targets[:size]
        step, extra = divmod(size, len(targets))
        shards, start = [], 0
        for rank, replica in enumerate(targets):
            stop = start + step + (1 if rank < extra else 0)
            shards.append((replica, range(start, stop)))
            start = stop
        return shards

    def plan(self, encoded: Sequence[bytes]) -> list[tuple[int, range]]:
        """A batch's requests: each shard cut within the size limits
        (:meth:`ClientConfig.plan_chunks`), with the replica it goes to first."""
        return [
            (replica, chunk)
            for replica, shard in self.shards(len(encoded))
            for chunk in self.config.plan_chunks(encoded, shard)
        ]

    def first(self, preferred: int | None = None) -> int:
        """The replica for a request's first attempt: ``preferred`` (its shard's) while it is
        healthy, else the next healthy one in rotation, else the one free soonest."""
        with self._lock:
            now = self._clock()
            if preferred is not None and self._health[preferred].cool_until <= now:
                return preferred
            healthy = self._healthy(now)
            return self._turn(healthy)[0] if healthy else self._soonest()

    def _soonest(self) -> int:
        return min(range(len(self.urls)), key=lambda i: self._health[i].cool_until)

    def succeeded(self, index: int) -> None:
        """``index`` answered: it is healthy again."""
        with self._lock:
            self._health[index] = _Health()

    def _cool(self, index: int, failure: Failure) -> None:
        config = self.config
        with self._lock:
            health = self._health[index]
            health.failures += 1
            now = self._clock()
            cool = min(config.backoff_max, config.backoff_base * 2**health.failures)
            retry_after = failure.error.retry_after
            if retry_after is not None:
                health.floor_until = max(health.floor_until, now + retry_after)
            health.cool_until = max(now + cool, health.floor_until)

    def next_attempt(
        self,
        attempt: int,
        index: int,
        failure: Failure,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> tuple[int, float] | None:
        """After attempt number ``attempt`` failed on replica ``index``: the replica to try
        next and the seconds to wait first, or None to give up (raise ``failure.error``).

        Another healthy replica is tried at once. When every replica is cooling, the wait is
        the usual backoff (:meth:`ClientConfig.retry_delay`), and no replica is sent a request
        before its own ``Retry-After`` has passed."""
        if failure.retryable:
            self._cool(index, failure)
        config = self.config
        if attempt >= config.max_retries or not failure.retryable:
            return None
        with self._lock:
            now = self._clock()
            others = [i for i in self._healthy(now) if i != index]
            if others:
                return self._turn(others)[0], 0.0
            target = self._soonest()
            floor = self._health[target].floor_until - now
        if target == index:  # its own Retry-After is a floor, or "not soon": give up
            delay = config.retry_delay(attempt, failure, uniform=uniform)
        else:  # that Retry-After was another replica's
            delay = backoff_delay(
                attempt, base=config.backoff_base, maximum=config.backoff_max, uniform=uniform
            )
        if delay is None or floor > config.max_retry_after:
            return None
        return target, max(delay, floor)
