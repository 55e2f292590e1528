"""The admission queue on its own event loop: FIFO hand-over, cancellation, refusals, draining.
The same behaviour over HTTP, against a real server, is in test_admission.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from reward_kit import EvaluatorUnavailable, Overloaded
from reward_kit.service._admission import MIN_LEARNT, AdmissionQueue


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def settle() -> None:
    for _ in range(5):  # let woken tasks run
        await asyncio.sleep(0)


def queue(**options: Any) -> AdmissionQueue:
    return AdmissionQueue(**{"slots": 1, "max_queued": 8, "timeout": 30.0, **options})


def test_a_finished_request_hands_its_slot_to_the_first_in_line() -> None:
    async def test() -> None:
        admission = queue()
        await admission.acquire()
        order: list[str] = []

        async def request(name: str) -> None:
            await admission.acquire()
            order.append(name)

        tasks = []
        for name in "bcd":
            tasks.append(asyncio.create_task(request(name)))
            await settle()
        assert (admission.in_flight, admission.queued) == (1, 3)
        for _ in "bcd":
            admission.release(0.1)
            await settle()
            assert admission.in_flight == 1  # handed over, never dropped while someone waits
        assert order == ["b", "c", "d"]
        admission.release(0.1)
        assert (admission.in_flight, admission.queued) == (0, 0)
        await asyncio.gather(*tasks)

    run(test)


def test_a_newcomer_does_not_jump_the_line() -> None:
    async def test() -> None:
        admission = queue()
        await admission.acquire()
        waiting = asyncio.create_task(admission.acquire())
        await settle()
        admission.release(0.1)  # the slot is now the waiter's, though it has not run yet
        newcomer = asyncio.create_task(admission.acquire())
        await settle()
        assert waiting.done()
        assert not newcomer.done()
        assert (admission.in_flight, admission.queued) == (1, 1)
        admission.release(0.1)
        await settle()
        assert newcomer.done()

    run(test)


def test_a_cancelled_waiter_frees_its_place() -> None:
    async def test() -> None:
        admission = queue(max_queued=1)
        await admission.acquire()
        first = asyncio.create_task(admission.acquire())
        await settle()
        with pytest.raises(Overloaded, match=r"the queue is full \(--max-queued 1\)"):
            await admission.acquire()
        first.cancel()
        await settle()
        assert admission.queued == 0
        second = asyncio.create_task(admission.acquire())
        await settle()
        assert admission.queued == 1
        admission.release(0.1)
        await settle()
        assert second.done()
        assert second.exception() is None
        admission.release(0.1)
        assert (admission.in_flight, admission.queued) == (0, 0)

    run(test)


def test_a_waiter_cancelled_as_it_gets_the_slot_passes_it_on() -> None:
    async def test() -> None:
        admission = queue()
        await admission.acquire()
        first = asyncio.create_task(admission.acquire())
        second = asyncio.create_task(admission.acquire())
        await settle()
        admission.release(0.1)  # granted to `first`...
        first.cancel()  # ...which is cancelled before it could run
        await settle()
        assert first.cancelled()
        assert second.done()
        assert second.exception() is None
        assert (admission.in_flight, admission.queued) == (1, 0)
        admission.release(0.1)
        assert admission.in_flight == 0  # no slot leaked

    run(test)


def test_a_waiter_whose_client_disconnects_leaves_the_line() -> None:
    async def test() -> None:
        admission = queue()
        await admission.acquire()
        disconnect = asyncio.Event()

        async def receive() -> dict[str, str]:
            await disconnect.wait()
            return {"type": "http.disconnect"}

        waiting = asyncio.create_task(admission.acquire(receive))
        await settle()
        assert admission.queued == 1
        disconnect.set()
        await settle()
        error = waiting.exception()
        assert error is not None
        assert getattr(error, "code", None) == "client_closed"
        assert admission.queued == 0
        admission.release(0.1)
        assert admission.in_flight == 0

    run(test)


def test_a_wait_past_the_timeout_is_a_429() -> None:
    async def test() -> None:
        admission = queue(timeout=0.05)
        await admission.acquire()
        with pytest.raises(Overloaded, match=r"within --queue-timeout \(0.05s\)") as caught:
            await admission.acquire()
        assert caught.value.retry_after == 1.0  # nothing has finished yet: nothing to go on
        assert (admission.in_flight, admission.queued) == (1, 0)

    run(test)


def test_an_expected_wait_past_the_timeout_is_refused_at_once() -> None:
    async def test() -> None:
        admission = queue(slots=2, timeout=10.0)
        admission.seconds_per_item = 6.0  # 2 slots: one one-item request finishes every 3 s
        admission.learnt = MIN_LEARNT
        await admission.acquire()
        await admission.acquire()
        waiters = [asyncio.create_task(admission.acquire()) for _ in range(3)]  # 3, 6, 9 s
        await settle()
        assert admission.queued == 3
        with pytest.raises(
            Overloaded, match=r"with 3 items waiting ahead, a slot would take about 12\.0s to come"
        ) as caught:
            await admission.acquire()
        # 12 s of work ahead, 10 s it may wait: a retry fits once 2 s of it are done; but no
        # sooner than the next request finishes (3 s).
        assert caught.value.retry_after == 3.0
        admission.drain()
        await asyncio.gather(*waiters, return_exceptions=True)

    run(test)


@pytest.mark.parametrize(
    ("seconds", "ahead", "timeout", "retry_after"),
    [
        (0.0, 100, 30.0, 1.0),  # nothing known: the header's minimum
        (0.5, 10, 30.0, 1.0),  # the next request finishes in 0.5 s: 1 s
        (8.0, 0, 30.0, 2.0),  # 4 slots of 8 s requests: one finishes every 2 s
        (2.0, 99, 5.0, 45.0),  # 100 x 2 s / 4 slots = 50 s of work, 5 s of it may be waited
        (2.0, 1000, 5.0, 60.0),  # capped: a client should come back and ask again
    ],
)
def test_retry_after_is_when_a_retry_could_be_admitted_in_time(
    seconds: float, ahead: int, timeout: float, retry_after: float
) -> None:
    admission = AdmissionQueue(slots=4, max_queued=8, timeout=timeout)
    admission.seconds_per_item = seconds
    assert admission.retry_after(ahead) == retry_after


def test_the_time_per_item_is_a_moving_average_of_requests_that_ran() -> None:
    async def test() -> None:
        admission = queue()
        for held, items in ((10.0, 10), (4.0, 2)):  # 1 s an item, then 2 s an item
            await admission.acquire()
            admission.release(held, items)
        assert admission.seconds_per_item == pytest.approx(1.2)  # the first, then 20 %
        # A request that failed before running anything (a bad body) teaches nothing.
        await admission.acquire()
        admission.release(None, 0)
        assert (admission.seconds_per_item, admission.learnt) == (pytest.approx(1.2), 2)

    run(test)


def test_the_estimate_refuses_nobody_until_enough_requests_ran() -> None:
    async def test() -> None:
        admission = queue(slots=1, timeout=1.0)
        admission.seconds_per_item = 100.0  # one slow first request: not a basis to refuse
        admission.learnt = MIN_LEARNT - 1
        await admission.acquire()
        waiter = asyncio.create_task(admission.acquire())
        await settle()
        assert admission.queued == 1  # it waits (and --queue-timeout bounds that)
        admission.learnt = MIN_LEARNT
        with pytest.raises(Overloaded, match="more than --queue-timeout"):
            await admission.acquire()
        admission.drain()
        await asyncio.gather(waiter, return_exceptions=True)

    run(test)


def test_waiting_items_not_requests_make_the_expected_wait() -> None:
    async def test() -> None:
        admission = queue(slots=1, timeout=10.0)
        admission.seconds_per_item = 1.0
        admission.learnt = MIN_LEARNT
        await admission.acquire()
        big = asyncio.create_task(admission.acquire(items=8))
        await settle()
        assert admission.items_ahead() == 8
        one = asyncio.create_task(admission.acquire())  # 8 + 1 items: 9 s, it may wait
        await settle()
        with pytest.raises(Overloaded, match="with 9 items waiting ahead"):
            await admission.acquire(items=2)  # 9 + 2 = 11 s
        admission.drain()
        await asyncio.gather(big, one, return_exceptions=True)

    run(test)


def test_draining_answers_every_waiter_and_newcomer_503() -> None:
    async def test() -> None:
        admission = queue()
        await admission.acquire()
        waiters = [asyncio.create_task(admission.acquire()) for _ in range(3)]
        await settle()
        admission.drain()
        await settle()
        for waiter in waiters:
            error = waiter.exception()
            assert isinstance(error, EvaluatorUnavailable)
            assert (error.code, error.status, error.retry_after) == ("shutting_down", 503, 1)
        with pytest.raises(EvaluatorUnavailable, match="shutting down"):
            await admission.acquire()
        admission.release(0.1)  # the request that held a slot finishes within the grace
        assert (admission.in_flight, admission.queued) == (0, 0)

    run(test)
