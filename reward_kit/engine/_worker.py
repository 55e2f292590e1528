"""Code that runs inside a worker process of the pool.

A worker loads the reward targets itself (by their import spec), runs each function's ``setup``
once, then evaluates chunks of items. Inside the worker, each item gets a *soft* deadline
(SIGALRM, the worker's main thread): a Python-level hang is interrupted and reported as a
timeout without losing the worker. The parent keeps a *hard* deadline per chunk and kills the
worker when the soft one cannot fire (a hang inside C code, signals blocked).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from .._function import RewardFunction
from .._loader import resolve_source
from ._containment import (
    RETIRE_EXIT_CODE,
    SECRET_VARIABLES,
    Containment,
    die_with_parent,
    make_subreaper,
    scrub_environment,
)
from ._outcome import DeadlineSignal, Item, Outcome, evaluate_group, evaluate_item, failure
from ._output import OUTPUT_LIMIT
from ._process_cap import limit_processes

__all__ = [
    "ChunkReport",
    "WorkerOptions",
    "initialize",
    "run_chunk",
    "run_group",
    "run_packed",
]

logger = logging.getLogger("reward_kit.worker")

_functions: dict[str, RewardFunction[Any]] = {}
_broken: dict[str, str] = {}
_memory_limit_mb: int | None = None
_containment: Containment | None = None

# (outcomes for the first len(outcomes) items of the chunk) - the parent re-queues the rest.
ChunkReport = list[Outcome]


_SoftTimeout = DeadlineSignal  # raised by SIGALRM in the item that overran


class WorkerOptions(NamedTuple):
    """How each worker contains what its rewards do (see _containment.py)."""

    memory_limit_mb: int | None = None
    max_tasks: int | None = None
    max_processes: int | None = None
    env_drop: tuple[str, ...] = SECRET_VARIABLES
    output_limit: int = OUTPUT_LIMIT
    log_format: str = "text"  # of what rewards print, as the server's log


def initialize(sources: list[tuple[str, str]], sys_path: list[str], options: WorkerOptions) -> None:
    """Pool initializer. Never raises: a failing initializer would break the whole pool, so a
    function that cannot load or set up is remembered and reported on each of its items."""
    global _memory_limit_mb, _containment
    sys.path[:] = sys_path
    # Its own process group, out of the terminal's: Ctrl-C reaches the server, which stops
    # the workers itself. As subreaper it keeps every process a reward starts in its tree.
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    make_subreaper()
    die_with_parent()
    scrub_environment(options.env_drop)
    if options.memory_limit_mb:
        _memory_limit_mb = options.memory_limit_mb
        limit = options.memory_limit_mb * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if options.max_processes:
        limit_processes(options.max_processes)
    _containment = Containment(
        memory_limit_mb=options.memory_limit_mb,
        max_tasks=options.max_tasks,
        output_limit=options.output_limit,
        log_format=options.log_format,
    )
    for name, source in sources:
        try:
            fn = resolve_source(source)
            fn.resources()
        except BaseException as error:
            _broken[name] = f"{name!r} could not be loaded in the worker: {error}"
            logger.error("worker %s: %s", name, _broken[name])
            continue
        _functions[name] = fn
    _containment.settle()


def _lookup(name: str) -> RewardFunction[Any] | str:
    fn = _functions.get(name)
    if fn is None:
        return _broken.get(name, f"{name!r} is not loaded in this worker")
    return fn


class _Deadline:
    """The soft deadline of one call. ``fired`` stays set once SIGALRM came, so a reward that
    swallows _SoftTimeout (a bare ``except:``) and returns is still reported as a timeout."""

    __slots__ = ("armed", "fired")

    def __init__(self) -> None:
        self.armed = True
        self.fired = False


_current: _Deadline | None = None
# After the first alarm, SIGALRM repeats this often: a reward that swallowed one gets the next.
_REPEAT = 0.25


def _on_alarm(signum: int, frame: Any) -> None:
    # One handler for the worker's life, never restored: a stray alarm after the deadline was
    # disarmed is ignored instead of raising in the middle of the next item or of pebble.
    deadline = _current
    if deadline is None:
        return
    deadline.fired = True
    if deadline.armed:
        raise _SoftTimeout


@contextlib.contextmanager
def _soft_deadline(seconds: float) -> Iterator[_Deadline]:
    global _current
    deadline = _Deadline()
    if threading.current_thread() is not threading.main_thread():
        yield deadline
        return
    if signal.getsignal(signal.SIGALRM) is not _on_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
    _current = deadline
    signal.setitimer(signal.ITIMER_REAL, seconds, _REPEAT)
    try:
        yield deadline
    finally:
        try:  # an alarm raising right here must not skip the cleanup below
            deadline.armed = False
        finally:
            _current = None
            signal.setitimer(signal.ITIMER_REAL, 0)


def _memory_message() -> str:
    if _memory_limit_mb:
        return f"the worker exceeded its memory limit of {_memory_limit_mb} MiB (MemoryError)"
    return "the worker ran out of memory (MemoryError)"


def run_chunk(name: str, items: list[Item], timeouts: list[float], budget: float) -> ChunkReport:
    """Evaluate items in order; stop early after a timeout or once ``budget`` seconds passed,
    so the chunk never runs long enough to meet the parent's hard deadline."""
    fn = _lookup(name)
    if isinstance(fn, str):
        return [failure("error", fn)] * len(items)
    outcomes: list[Outcome] = []
    chunk_start = time.monotonic()
    for item, timeout in zip(items, timeouts, strict=True):
        start = time.perf_counter()
        _begin()
        try:
            with _soft_deadline(timeout) as deadline:
                outcome = evaluate_item(fn, item)
        except _SoftTimeout:
            outcome = _timed_out(timeout, start)
        else:
            if _overran(deadline, timeout, start):  # whatever the function then returned
                outcome = _timed_out(timeout, start)
        if outcome.status == "crashed":
            outcome = failure("crashed", _memory_message(), outcome.duration_ms)
        _end(outcome)
        outcomes.append(outcome)
        if outcome.status == "timeout" or time.monotonic() - chunk_start >= budget or _retiring():
            break
    return outcomes


def run_group(name: str, items: list[Item], timeout: float) -> ChunkReport:
    """One call of a batch-mode function over the whole group."""
    fn = _lookup(name)
    if isinstance(fn, str):
        return [failure("error", fn)] * len(items)
    start = time.perf_counter()
    _begin()
    try:
        with _soft_deadline(timeout) as deadline:
            outcomes = evaluate_group(fn, items)
    except _SoftTimeout:
        outcomes = [_timed_out(timeout, start)] * len(items)
    else:
        if _overran(deadline, timeout, start):
            outcomes = [_timed_out(timeout, start)] * len(items)
    if outcomes and outcomes[0].status == "crashed":
        outcomes = [failure("crashed", _memory_message(), outcomes[0].duration_ms)] * len(items)
    _end(outcomes[0] if outcomes else None)
    return outcomes


def _overran(deadline: _Deadline, timeout: float, start: float) -> bool:
    """The deadline passed during the call: the alarm fired (and the reward swallowed it), or
    the reward blocked SIGALRM and still returned late. Either way it is a timeout, never the
    score it returned."""
    return deadline.fired or time.perf_counter() - start > timeout


def _timed_out(timeout: float, start: float) -> Outcome:
    elapsed = (time.perf_counter() - start) * 1000.0
    return failure("timeout", f"the reward function ran past its {timeout:g}s deadline", elapsed)


def _begin() -> None:
    if _containment is not None:
        _containment.begin()


def _end(outcome: Outcome | None) -> None:
    if _containment is not None:
        out_of_memory = outcome is not None and outcome.status == "crashed"
        _containment.end(ran_out_of_memory=out_of_memory)


def _retiring() -> bool:
    return _containment is not None and _containment.retire_reason is not None


def run_packed(packed: bytes) -> Any:
    """Run ``(function, args)`` pickled by the parent: it pickles tasks itself, so pebble only
    ever sends bytes (see _pool.ProcessExecutor._call).

    A worker marked for retirement exits here, before running the task: the parent sees the
    exit code and runs the task on a fresh worker. Exiting right after sending a result is not
    possible from inside a pebble task, and exiting mid-task would lose the task.
    """
    if _containment is not None and _containment.retire_reason is not None:
        logger.warning("worker %d retires: %s", os.getpid(), _containment.retire_reason)
        os._exit(RETIRE_EXIT_CODE)
    fn, args = pickle.loads(packed)
    return fn(*args)


def load_report() -> dict[str, str]:
    """Answered once the worker is up: the functions it could not load or set up."""
    return dict(_broken)
