"""The per-item checks of a worker, in this process: the soft deadline and the child check
(issue 17 made each cheaper; these pin down that they still answer right)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reward_kit.engine._deadline import Deadline, disarm
from reward_kit.engine._outcome import DeadlineSignal
from reward_kit.engine._process_tree import ChildCheck, has_children, thread_count

from .conftest import FIXTURES

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")


@pytest.fixture(autouse=True)
def _own_alarm_handler() -> Iterator[None]:
    before = signal.getsignal(signal.SIGALRM)
    try:
        yield
    finally:
        disarm()
        signal.signal(signal.SIGALRM, before)


def test_a_call_that_overruns_is_interrupted() -> None:
    deadline = Deadline(0.05)
    with pytest.raises(DeadlineSignal), deadline:
        time.sleep(2)
    assert deadline.fired


def test_an_alarm_between_calls_is_ignored() -> None:
    deadline = Deadline(0.05)
    with deadline.again(0.05):
        pass
    time.sleep(0.2)  # the timer is still armed after the call, and fires here: ignored
    with deadline.again(5):
        pass
    assert not deadline.fired


def test_each_call_sets_the_timer_again_even_when_a_reward_turned_it_off() -> None:
    deadline = Deadline(0.05)
    with deadline.again(0.05):
        signal.setitimer(signal.ITIMER_REAL, 0)  # a library's timeout, cleaning up
    with pytest.raises(DeadlineSignal), deadline.again(0.05):
        time.sleep(2)


def test_disarm_stops_the_timer() -> None:
    with Deadline(0.05):
        pass
    disarm()
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs procfs")
def test_the_child_check_sees_a_child_and_falls_back_once_its_descriptor_fails() -> None:
    check = ChildCheck(threads=thread_count())
    settled = True
    assert check(settled) is has_children()
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert check(settled) is True
        os.close(check._fd)  # a reward closed it: waitid from then on
        assert check(settled) is True
        assert check._fd == -1
    finally:
        child.kill()
        child.wait()
    assert check(settled) is has_children()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs procfs")
def test_the_child_check_reads_the_main_threads_children_only_when_told_it_may() -> None:
    """A child of another thread is not in the main thread's file: unsettled, it is waitid."""
    check = ChildCheck(threads=thread_count())
    started: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(target=lambda: started.append(subprocess.Popen(["sleep", "30"])))
    thread.start()
    thread.join()
    try:
        assert check(False) is True
    finally:
        started[0].kill()
        started[0].wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
def test_the_pools_pipes_hold_a_whole_chunk() -> None:
    """A chunk's results (about 100 KiB for 500 trivial items) fit in the pipe at once."""
    import fcntl

    from reward_kit import load_functions
    from reward_kit.engine import Call, Engine, RawItem
    from reward_kit.engine._draining import PIPE_BYTES

    functions = load_functions([str(FIXTURES / "hostile.py")])
    item = RawItem({"messages": [{"role": "user", "content": "4"}], "ground_truth": "4"}, "items.0")

    async def sizes() -> list[int]:
        async with Engine(functions=functions, workers=1) as engine:
            (outcome,) = await engine.run_encoded([Call(functions["good"], item, 10.0)])
            assert outcome.status == "ok"
            assert engine._process is not None
            channel = engine._process._pool._pool_manager.worker_manager.pool_channel
            ends = (channel.reader, channel.writer)
            return [fcntl.fcntl(end.fileno(), fcntl.F_GETPIPE_SZ) for end in ends]

    ceiling = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    expected = PIPE_BYTES if os.geteuid() == 0 else min(PIPE_BYTES, ceiling)
    assert asyncio.run(sizes()) == [expected, expected]
