"""The worker pool survives what breaks a pebble pool: a worker dying while idle, a worker dying
before its acknowledgement was read; and a broken pool leaves no workers or tasks behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import psutil
import pytest

from reward_kit import load_functions
from reward_kit.engine import Call, Engine, Item

from ..conftest import FIXTURES, HOSTILE

pytestmark = pytest.mark.slow

FUNCTIONS = load_functions([HOSTILE, str(FIXTURES / "tagged.py")])
GOOD = Call(FUNCTIONS["good"], Item([{"role": "user", "content": "4"}], "4"), 5.0)


def workers() -> set[int]:
    """Live pool workers of this process (children of the multiprocessing fork server)."""
    found: set[int] = set()
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):  # exited while we looked
            if "multiprocessing.forkserver" in " ".join(child.cmdline()):
                for worker in child.children():
                    with contextlib.suppress(psutil.Error):
                        if worker.status() != psutil.STATUS_ZOMBIE:
                            found.add(worker.pid)
    return found


async def wait_for_workers(
    count: int, exclude: frozenset[int] = frozenset(), others: frozenset[int] = frozenset()
) -> set[int]:
    """Wait until this engine has ``count`` workers, none in ``exclude``. The fork server is
    shared by the whole test process: ``others`` are processes it forked before this test."""
    deadline = time.monotonic() + 15
    while True:
        live = workers() - others
        if len(live) == count and not live & exclude:
            return live
        assert time.monotonic() < deadline, (live, exclude)
        await asyncio.sleep(0.05)


def engine() -> Engine:
    return Engine(functions=FUNCTIONS, workers=2)


def test_a_worker_dying_while_idle_does_not_break_the_server() -> None:
    # pebble breaks its pool when a worker dies with no task running, and then refuses every
    # new task; the engine used to raise that RuntimeError on every request from then on.
    async def scenario() -> None:
        others = frozenset(workers())
        async with engine() as running:
            assert (await running.run([GOOD]))[0].status == "ok"
            killed = min(await wait_for_workers(2, others=others))
            os.kill(killed, signal.SIGKILL)
            await asyncio.sleep(0.5)  # pebble notices (every 0.1 s) and breaks the pool
            for _ in range(3):
                (outcome,) = await running.run([GOOD])
                assert outcome.status == "ok", outcome
            # Two workers, not three: the old pool's surviving worker was stopped with it.
            await wait_for_workers(2, exclude=frozenset({killed}), others=others)

    asyncio.run(scenario())


def test_a_worker_that_dies_before_its_acknowledgement_is_read_is_a_crash() -> None:
    # pebble reads acknowledgements on one thread and notices dead workers on another; when the
    # message thread is late (a busy server), a reward that exits at once used to come back as
    # a timeout after its hard deadline. Make the message thread late on purpose.
    async def scenario() -> None:
        async with engine() as running:
            assert running._process is not None
            manager: Any = running._process._pool._pool_manager
            receive = manager.worker_manager.receive

            def late_receive(timeout: float) -> Any:
                message = receive(timeout)
                if type(message).__name__ == "Acknowledgement":
                    time.sleep(0.4)  # the pool thread looks at the workers every 0.1 s
                return message

            manager.worker_manager.receive = late_receive
            slow = Item([{"role": "user", "content": "x"}], None, {"id": 1, "ms": 3000})
            exits = Item([{"role": "user", "content": "x"}])
            busy = asyncio.ensure_future(running.run([Call(FUNCTIONS["tagged"], slow, 10.0)]))
            await asyncio.sleep(0.6)  # the slow item is acknowledged and running
            (outcome,) = await running.run([Call(FUNCTIONS["exits"], exits, 2.0)])
            # Not "timeout" after its hard deadline.
            assert outcome.status == "crashed", outcome
            assert outcome.error is not None
            assert "exited with code 1" in outcome.error["message"]
            (slow_outcome,) = await busy
            assert slow_outcome.status == "ok", slow_outcome

    asyncio.run(scenario())


def test_tasks_a_broken_pool_never_answers_are_failed_for_a_retry() -> None:
    async def scenario() -> None:
        async with engine() as running:
            executor = running._process
            assert executor is not None
            orphan: Future[Any] = Future()  # queued in pebble when its pool broke
            executor._outstanding.add(orphan)
            generation = executor._generation
            await asyncio.get_running_loop().run_in_executor(None, executor._recover, generation)
            assert isinstance(orphan.exception(timeout=0), BrokenProcessPool)
            assert (await running.run([GOOD]))[0].status == "ok"

    asyncio.run(scenario())


class _CrashesThePickler:
    """Pickling this fails with an error pebble does not expect on its scheduler thread (as a
    JSON array nested 600 deep did), after a pause that lets other tasks queue behind it."""

    def __reduce__(self) -> Any:
        time.sleep(0.5)
        raise RecursionError("maximum recursion depth exceeded while pickling an object")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_tasks_queued_behind_a_dead_pool_thread_are_rerun_by_the_watchdog() -> None:
    # The engine pickles every task itself, so this cannot come from a request any more; the
    # watchdog is the net for any other fault that kills one of pebble's threads.
    from reward_kit.engine import _worker

    async def scenario() -> None:
        async with engine() as running:
            executor = running._process
            assert executor is not None
            doomed, _ = executor._schedule(_worker.run_packed, (_CrashesThePickler(),), 5.0)
            await asyncio.sleep(0.1)  # the scheduler thread is pickling it
            start = time.monotonic()
            outcomes = await asyncio.wait_for(running.run([GOOD, GOOD]), 30)
            assert [o.status for o in outcomes] == ["ok", "ok"], outcomes
            assert time.monotonic() - start < 10
            assert isinstance(doomed.exception(timeout=0), BrokenProcessPool)

    asyncio.run(scenario())


def test_a_task_the_pool_never_kills_is_a_timeout_from_the_watchdog() -> None:
    async def scenario() -> None:
        others = frozenset(workers())
        async with engine() as running:
            assert running._process is not None
            pool: Any = running._process._pool
            assert (await running.run([GOOD]))[0].status == "ok"
            before = await wait_for_workers(2, others=others)
            pool._pool_manager.update_tasks = lambda: None  # pebble no longer kills overruns
            # SIGALRM blocked: the soft deadline cannot fire either.
            stuck = Item([{"role": "user", "content": "x"}], None, {"id": 1, "behaviour": "block"})
            start = time.monotonic()
            (outcome,) = await asyncio.wait_for(
                running.run([Call(FUNCTIONS["tagged"], stuck, 0.5)]), 30
            )
            elapsed = time.monotonic() - start
            assert outcome.status == "timeout", outcome
            assert outcome.error is not None
            assert "the pool was restarted" in outcome.error["message"]
            # hard deadline 2 s + SAFETY_GRACE 2 s (+ the watchdog's tick and a busy machine)
            assert 3.5 < elapsed < 15, elapsed
            assert (await running.run([GOOD]))[0].status == "ok"
            # The stuck worker was stopped with the old pool, not leaked.
            await wait_for_workers(2, exclude=frozenset(before), others=others)

    asyncio.run(scenario())
