"""Retrying, one way: exponential backoff with jitter, with the server's ``Retry-After`` as a
floor. Used by the SDK, the LLM judge and the deploy code, each keeping its own loop (they
differ in what is worth retrying, not in how long to wait).
"""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime

__all__ = ["backoff_delay", "parse_retry_after", "retry_delay"]

Uniform = Callable[[float, float], float]


def parse_retry_after(
    value: str | bytes | None, *, now: datetime.datetime | None = None
) -> float | None:
    """Seconds a ``Retry-After`` header asks for, or None when it says nothing usable.

    Both forms of RFC 9110 are read: delay-seconds and an HTTP date (``-0000`` and other
    zones too, and a date without one is taken as UTC). A date in the past is 0; garbage,
    negative or non-finite values are None rather than an exception.

    >>> parse_retry_after("2"), parse_retry_after(" 1.5 "), parse_retry_after("soon")
    (2.0, 1.5, None)
    >>> now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    >>> parse_retry_after("Thu, 01 Jan 2026 00:00:30 -0000", now=now)
    30.0
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until(text, now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(text: str, now: datetime.datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses as a naive datetime: it means UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(
    attempt: int, *, base: float, maximum: float, uniform: Uniform = random.uniform
) -> float:
    """Exponential backoff with "equal jitter": between half and all of
    ``min(maximum, base * 2**attempt)``, so clients that failed together do not retry
    together, and never 0.

    >>> backoff_delay(3, base=0.5, maximum=30.0, uniform=max)
    4.0
    """
    ceiling = min(maximum, base * 2 ** min(attempt, 62))
    return float(uniform(ceiling / 2, ceiling))


def retry_delay(
    attempt: int,
    *,
    base: float,
    maximum: float,
    retry_after: float | None = None,
    uniform: Uniform = random.uniform,
) -> float:
    """The wait before retry number ``attempt + 1``: the backoff, or, when the server's
    ``Retry-After`` is longer, that plus up to half a backoff step of jitter. A floor, not a
    replacement: a server answering ``Retry-After: 1`` to every retry must not cut a client's
    backoff short; and clients refused together must not all come back on the same second.

    >>> retry_delay(0, base=0.5, maximum=30.0, retry_after=3.0, uniform=max)
    3.25
    >>> retry_delay(0, base=0.5, maximum=30.0, retry_after=3.0, uniform=min)
    3.0
    >>> retry_delay(4, base=0.5, maximum=30.0, retry_after=1.0, uniform=max)
    8.0
    """
    delay = backoff_delay(attempt, base=base, maximum=maximum, uniform=uniform)
    if retry_after is None or delay >= retry_after:
        return delay
    step = min(maximum, base * 2 ** min(attempt, 62))
    return retry_after + float(uniform(0.0, step / 2))
