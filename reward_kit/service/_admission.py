"""Admission: ``--max-in-flight`` slots, and a bounded FIFO queue of requests waiting for one.

A trainer sends its samples all at once (OpenRLHF posts one request per sample, verl runs
workers x threads of them), and a burst over the slots is normal, not overload: answering it
429 only makes the trainer's few fixed retries run out. So a request that finds every slot
taken waits, first come first served, for up to ``--queue-timeout``. It is refused with 429 when
the queue already holds ``--max-queued`` requests, when the wait it can expect is longer than
the timeout, or when the timeout passes; ``Retry-After`` then says when a retry could be
admitted in time (:meth:`AdmissionQueue.retry_after`).

The expected wait is learnt per item, not per request: one 600-item batch must not make the
next one-sample requests look 600 times as long. A request that ran items reports how many
(:meth:`Service.run` calls :func:`count_items`), and its time per item joins a moving average;
one that failed before running any (a parse or validation error) teaches nothing. A waiting
request counts as the items it declared when admitted (one for ``/evaluate``; a batch's size
is read only once admitted, so it counts as one until then: the estimate errs toward
admitting, and ``--queue-timeout`` still bounds the wait). Until :data:`MIN_LEARNT` requests
have run, nobody is refused on the estimate at all.

A finished request hands its slot straight to the first live waiter, so the in-flight count
never drops while someone waits, and a newcomer can take a free slot only when nobody is
waiting. A waiter that is cancelled, or whose client goes away, leaves the queue; one cancelled
in the instant it was given a slot passes the slot on. Everything runs on the event loop
thread: plain counters, no locks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import enum
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import EvaluatorUnavailable, Overloaded, RequestRejected
from ._metrics import Metrics

__all__ = ["MIN_LEARNT", "AdmissionQueue", "Slot", "count_items"]

# Weight of the newest request in the moving average of the time an item holds a slot.
_SMOOTHING = 0.2
# Requests that must have run before the expected wait may refuse anyone: a first few can be
# anything (a cold worker pool, one huge batch).
MIN_LEARNT = 16
# Retry-After bounds: whole seconds (RFC 9110), and never so long a client stops trying.
_RETRY_AFTER_MAX = 60.0

Receive = Callable[[], Awaitable[Any]]


class _Answer(enum.Enum):
    GRANTED = "granted"
    EXPIRED = "expired"
    DRAINED = "drained"


class AdmissionQueue:
    """``slots`` requests at once; up to ``max_queued`` more wait up to ``timeout`` seconds.

    >>> queue = AdmissionQueue(slots=2, max_queued=8, timeout=30.0)
    >>> queue.in_flight, queue.queued
    (0, 0)
    >>> queue.seconds_per_item = 0.5  # learnt from finished requests
    >>> queue.expected_wait(4)  # 4 items must finish first, 2 slots at a time
    1.0
    """

    def __init__(
        self, *, slots: int, max_queued: int, timeout: float, metrics: Metrics | None = None
    ) -> None:
        self.slots = slots
        self.max_queued = max_queued
        self.timeout = timeout
        self.metrics = metrics
        self.in_flight = 0
        self.draining = False
        # Moving average of a slot's time per item it ran; 0 until a request has run items.
        self.seconds_per_item = 0.0
        # Requests that ran items and were learnt from.
        self.learnt = 0
        # Waiters in arrival order, with the items each declared. A cancelled one may stay
        # until its task runs again: the hand-over skips futures that are already done.
        self._waiters: collections.deque[asyncio.Future[_Answer]] = collections.deque()
        self._items: dict[asyncio.Future[_Answer], int] = {}

    @property
    def queued(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    def slot(self, receive: Receive | None = None, items: int = 1) -> Slot:
        """``async with queue.slot(request.receive):`` holds a slot for the block. ``receive``
        lets a queued request notice that its client has gone, and leave the queue; ``items``
        is what the request is expected to run, as far as known before it is parsed."""
        return Slot(self, receive, items)

    def expected_wait(self, items: int) -> float:
        """Seconds until ``items`` items have run, all slots busy."""
        return items * self.seconds_per_item / self.slots

    def items_ahead(self) -> int:
        """Items the live waiters declared."""
        return sum(self._items.get(w, 1) for w in self._waiters if not w.done())

    def retry_after(self, ahead: int) -> float:
        """When a request with ``ahead`` items before it could retry and be admitted within
        the queue timeout, if nobody else came: once enough of those ahead have run, and at
        least one has. Whole seconds are the header's business."""
        one = self.expected_wait(1)
        late = self.expected_wait(ahead + 1) - self.timeout
        return min(_RETRY_AFTER_MAX, max(1.0, one, late))

    async def acquire(self, receive: Receive | None = None, items: int = 1) -> None:
        """Take a slot, waiting in line for one if needed; raises the 429 or 503 to answer."""
        if self.draining:
            raise _shutting_down()
        if self.in_flight < self.slots:
            # No live waiter exists while a slot is free (a finishing request hands its slot
            # to the first one), so taking it jumps nobody.
            self.in_flight += 1
            return
        if len(self._waiters) >= self.max_queued:
            self._refuse("queue_full", self.items_ahead())
        ahead = self.items_ahead()
        if self.learnt >= MIN_LEARNT and self.expected_wait(ahead + items) > self.timeout:
            self._refuse("expected_wait", ahead, items)
        await self._wait(receive, items)

    async def _wait(self, receive: Receive | None, items: int) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Answer] = loop.create_future()
        self._waiters.append(waiter)
        self._items[waiter] = items
        timer = loop.call_later(self.timeout, _resolve, waiter, _Answer.EXPIRED)
        gone = asyncio.ensure_future(_disconnected(receive)) if receive is not None else None
        started = time.monotonic()
        try:
            if gone is None:
                await waiter
            else:
                await asyncio.wait((waiter, gone), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._leave(waiter)
            raise
        finally:
            timer.cancel()
            if gone is not None and not gone.cancel() and not gone.cancelled():
                gone.exception()  # a receive() that failed means the client is gone too
            if self.metrics is not None:
                self.metrics.queue_wait.observe(time.monotonic() - started)
        if not waiter.done():
            self._leave(waiter)
            raise RequestRejected(
                "the client closed the connection while its request waited for a slot",
                code="client_closed",
                status_code=499,
            )
        answer = waiter.result()
        if answer is _Answer.DRAINED:
            raise _shutting_down()
        if answer is _Answer.EXPIRED:
            # Still in line unless a hand-over skipped it: then nobody was ahead any more.
            ahead = 0
            if waiter in self._waiters:
                before = list(self._waiters)[: self._waiters.index(waiter)]
                ahead = sum(self._items.get(w, 1) for w in before if not w.done())
            self._remove(waiter)
            self._refuse("queue_timeout", ahead)

    def _leave(self, waiter: asyncio.Future[_Answer]) -> None:
        """``waiter`` gives up: out of the line, or, if it was just given a slot, the slot
        goes to the next in line."""
        if waiter.done() and not waiter.cancelled() and waiter.result() is _Answer.GRANTED:
            self.release(None)
            return
        waiter.cancel()
        self._remove(waiter)

    def _remove(self, waiter: asyncio.Future[_Answer]) -> None:
        self._items.pop(waiter, None)
        with contextlib.suppress(ValueError):  # already handed over or drained
            self._waiters.remove(waiter)

    def release(self, held: float | None, items: int = 1) -> None:
        """A request finished after holding its slot ``held`` seconds (None: it ran nothing,
        or the time is unknown) for ``items`` items; the slot goes to the first live waiter,
        or back to the pool."""
        if held is not None and items > 0:
            per_item = held / items
            average = self.seconds_per_item
            self.seconds_per_item = (
                per_item if self.learnt == 0 else average + _SMOOTHING * (per_item - average)
            )
            self.learnt += 1
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            self._items.pop(waiter, None)
            if not waiter.done():
                waiter.set_result(_Answer.GRANTED)
                return
        self.in_flight -= 1

    def drain(self) -> None:
        """The server is shutting down: refuse every waiter (503) now and every newcomer.
        Requests holding a slot finish within the shutdown grace."""
        self.draining = True
        while self._waiters:
            _resolve(self._waiters.popleft(), _Answer.DRAINED)
        self._items.clear()

    def _refuse(self, reason: str, ahead: int, items: int = 1) -> None:
        if self.metrics is not None:
            self.metrics.count_admission_refused(reason)
        wait = self.retry_after(ahead)
        why = {
            "queue_full": (
                f"the queue is full (--max-queued {self.max_queued})"
                if self.max_queued
                else "this server keeps no queue (--max-queued 0)"
            ),
            "expected_wait": (
                f"with {ahead} items waiting ahead, a slot would take about "
                f"{self.expected_wait(ahead + items):.1f}s to come, more than --queue-timeout "
                f"({self.timeout:g}s)"
            ),
            "queue_timeout": f"none came free within --queue-timeout ({self.timeout:g}s)",
        }[reason]
        raise Overloaded(
            f"every evaluation slot (--max-in-flight {self.slots}) is taken and {why}; retry in "
            f"{math.ceil(wait)}s",
            retry_after=wait,
        )


class Slot:
    """One request's slot, as an async context manager (see :meth:`AdmissionQueue.slot`)."""

    # A class rather than @asynccontextmanager: the generator version costs more per request.
    __slots__ = ("declared", "items", "queue", "receive", "started", "token")

    def __init__(self, queue: AdmissionQueue, receive: Receive | None, declared: int) -> None:
        self.queue = queue
        self.receive = receive
        self.declared = declared
        self.items = 0  # what it ran, reported through count_items
        self.started = 0.0
        self.token: contextvars.Token[Slot | None] | None = None

    async def __aenter__(self) -> None:
        await self.queue.acquire(self.receive, self.declared)
        self.started = time.monotonic()
        self.token = _CURRENT.set(self)

    async def __aexit__(self, *exc: object) -> None:
        if self.token is not None:
            _CURRENT.reset(self.token)
        ran = self.items > 0
        self.queue.release(time.monotonic() - self.started if ran else None, self.items)


_CURRENT: contextvars.ContextVar[Slot | None] = contextvars.ContextVar(
    "reward_kit_admission_slot", default=None
)


def count_items(items: int) -> None:
    """The request holding a slot in this context runs ``items`` more items (the admission
    estimate learns a slot's time per item from it); outside a slot, nothing."""
    slot = _CURRENT.get()
    if slot is not None:
        slot.items += items


def _resolve(waiter: asyncio.Future[_Answer], answer: _Answer) -> None:
    if not waiter.done():
        waiter.set_result(answer)


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has disconnected (the body was already read, so the next
    ASGI message is the disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _shutting_down() -> EvaluatorUnavailable:
    return EvaluatorUnavailable(
        "the server is shutting down and did not start this request, which waited for a slot; "
        "retry it (another instance, or this one once restarted, will answer)",
        code="shutting_down",
        retry_after=1,
    )
