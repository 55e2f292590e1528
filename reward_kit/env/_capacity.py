"""How long a caller refused at ``--env-max-sessions`` should wait: the ``Retry-After``.

The soonest expiry is no answer: with the default idle TTL it is about 300 s, and clients drop
a ``Retry-After`` over 30 s, so at capacity nobody would retry. Sessions end (DELETE, the
reaper, a kill) at a rate the server can see instead. With ``n`` sessions open that each live
``L`` seconds on average, one ends every ``L / n`` seconds, so::

    Retry-After = clamp(ceil(min(L / n, soonest expiry)), 1, 30)

``L`` is an exponentially weighted moving average (weight 0.2) of the lifetimes of the sessions
that ended; before any has, the mean age of the open ones (a lower bound on their lifetime).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["LifetimeEstimate", "MAX_RETRY_AFTER", "MIN_RETRY_AFTER"]

MIN_RETRY_AFTER = 1.0
# What the SDK's retries still honour; a longer hint would make clients give up instead.
MAX_RETRY_AFTER = 30.0
_WEIGHT = 0.2


class LifetimeEstimate:
    """The moving average of session lifetimes, and the ``Retry-After`` it implies."""

    def __init__(self) -> None:
        self.mean: float | None = None

    def ended(self, lifetime: float) -> None:
        """Count a session that ended after ``lifetime`` seconds."""
        lifetime = max(0.0, lifetime)
        self.mean = lifetime if self.mean is None else self.mean + _WEIGHT * (lifetime - self.mean)

    def retry_after(self, ages: Iterable[float], soonest_expiry: float) -> float:
        """Seconds until a slot is likely free, given the ages of the open sessions.

        >>> estimate = LifetimeEstimate()
        >>> estimate.ended(40.0)
        >>> estimate.retry_after([5.0, 6.0, 7.0, 8.0], soonest_expiry=300.0)  # 40 s / 4
        10.0
        >>> estimate.retry_after([5.0], soonest_expiry=300.0)  # clamped
        30.0
        >>> estimate.retry_after([5.0] * 4, soonest_expiry=2.5)  # the reaper comes sooner
        3.0
        """
        ages = list(ages)
        if not ages:
            return MIN_RETRY_AFTER
        mean = self.mean if self.mean is not None else sum(ages) / len(ages)
        wait = min(mean / len(ages), max(0.0, soonest_expiry))
        return min(MAX_RETRY_AFTER, max(MIN_RETRY_AFTER, float(math.ceil(wait))))
