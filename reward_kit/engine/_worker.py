"""Code that runs inside a worker process of the pool.

A worker loads the reward targets itself (by their import spec), runs each function's ``setup``
once, then evaluates chunks of items. Inside the worker, each item gets a *soft* deadline
(SIGALRM, the worker's main thread): a Python-level hang is interrupted and reported as a
timeout without losing the worker. The parent keeps a *hard* deadline per chunk and kills the
worker when the soft one cannot fire (a hang inside C code, signals blocked).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import resource
import sys
import threading
import time
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
from ._deadline import Deadline, disarm
from ._encoded import ItemFields, WireOutcome, evaluate_encoded, to_wire
from ._outcome import DeadlineSignal, Item, Outcome, evaluate_group, failure
from ._output import OUTPUT_LIMIT
from ._process_cap import limit_processes
from ._raw import decode_chunk

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
# Results travel as JSON, in plain tuples (see _encoded.py).
ChunkReport = list[WireOutcome]


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
    # The worker's modules and rewards live as long as it does: the collector need not scan
    # them again on every full collection.
    gc.freeze()


def _lookup(name: str) -> RewardFunction[Any] | str:
    fn = _functions.get(name)
    if fn is None:
        return _broken.get(name, f"{name!r} is not loaded in this worker")
    return fn


def _memory_message() -> str:
    if _memory_limit_mb:
        return f"the worker exceeded its memory limit of {_memory_limit_mb} MiB (MemoryError)"
    return "the worker ran out of memory (MemoryError)"


def run_chunk(
    name: str, items: list[ItemFields] | bytes, timeouts: list[float], budget: float
) -> ChunkReport:
    """Evaluate items (each an :class:`Item` as a plain tuple, or all of them as JSON still to
    validate, see _raw.py) in order; stop early after a timeout or once ``budget`` seconds
    passed, so the chunk never runs long enough to meet the parent's hard deadline."""
    fn = _lookup(name)
    if isinstance(fn, str):
        return [to_wire(failure("error", fn))] * len(timeouts)
    chunk_start = time.monotonic()
    todo = decode_chunk(items, fn) if isinstance(items, bytes) else items
    try:
        return _run_items(fn, todo, timeouts, budget, chunk_start)
    finally:
        disarm()


def _run_items(
    fn: RewardFunction[Any],
    todo: list[ItemFields | Outcome] | list[ItemFields],
    timeouts: list[float],
    budget: float,
    chunk_start: float,
) -> ChunkReport:
    outcomes: ChunkReport = []
    # Looked up once per chunk, not per item: this loop is most of a trivial item's overhead.
    containment = _containment
    deadline = Deadline(0.0, main_thread=threading.current_thread() is threading.main_thread())
    for item, timeout in zip(todo, timeouts, strict=True):
        if isinstance(item, Outcome):  # it failed validation: nothing ran
            outcomes.append(to_wire(item))
            continue
        start = time.perf_counter()
        if containment is not None:
            containment.begin()
        try:
            with deadline.again(timeout):
                outcome = evaluate_encoded(fn, item)
        except _SoftTimeout:
            outcome = to_wire(_timed_out(timeout, start))
        else:
            if _overran(deadline, timeout, start):  # whatever the function then returned
                outcome = to_wire(_timed_out(timeout, start))
        status = outcome[0]
        if status == "crashed":
            outcome = to_wire(failure("crashed", _memory_message(), outcome[3]))
        retiring = False
        if containment is not None:
            containment.end(ran_out_of_memory=status == "crashed")
            retiring = containment.retire_reason is not None
        outcomes.append(outcome)
        if status == "timeout" or retiring or time.monotonic() - chunk_start >= budget:
            break
    return outcomes


def run_group(name: str, items: list[Item], timeout: float) -> ChunkReport:
    """One call of a batch-mode function over the whole group."""
    fn = _lookup(name)
    if isinstance(fn, str):
        return [to_wire(failure("error", fn))] * len(items)
    start = time.perf_counter()
    _begin()
    try:
        with Deadline(timeout) as deadline:
            outcomes = evaluate_group(fn, items)
    except _SoftTimeout:
        outcomes = [_timed_out(timeout, start)] * len(items)
    else:
        if _overran(deadline, timeout, start):
            outcomes = [_timed_out(timeout, start)] * len(items)
    finally:
        disarm()
    if outcomes and outcomes[0].status == "crashed":
        outcomes = [failure("crashed", _memory_message(), outcomes[0].duration_ms)] * len(items)
    _end(crashed=bool(outcomes) and outcomes[0].status == "crashed")
    return [to_wire(outcome) for outcome in outcomes]


def _overran(deadline: Deadline, timeout: float, start: float) -> bool:
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


def _end(*, crashed: bool) -> None:
    if _containment is not None:
        _containment.end(ran_out_of_memory=crashed)


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
