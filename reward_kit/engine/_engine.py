"""The execution engine: decides where each reward runs and enforces its deadline.

* ``isolation="process"`` (default for sync functions): a pool of killable worker processes.
* ``isolation="thread"``: a dedicated thread pool; a timed-out call is reported, not killed.
* ``isolation="inline"``: async functions run on the event loop under a deadline; sync ones run
  on the loop thread with no deadline (only for trivially cheap functions).
* ``workers=0``: no worker processes at all (AWS Lambda has no /dev/shm for multiprocessing);
  process-isolated functions then run in the thread pool.

See docs/execution-engine.md for the reasoning and the guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from .._errors import ConfigurationError
from .._function import Isolation, RewardFunction
from ._encoded import EncodedOutcome, encode
from ._loops import LoopThreads
from ._outcome import (
    Item,
    Outcome,
    aevaluate_group,
    aevaluate_item,
    evaluate_group,
    evaluate_item,
    failure,
)
from ._raw import RawItem, validated
from ._threads import DaemonThreads

if TYPE_CHECKING:
    from ._pool import ProcessExecutor

__all__ = ["Call", "Engine"]

logger = logging.getLogger("reward_kit.engine")

OnResult = Callable[[int, Outcome], None]
_T = TypeVar("_T")


class Call(NamedTuple):
    """One item to evaluate with one function, under ``timeout`` seconds. A :class:`RawItem`
    is validated where it runs (see _raw.py); an invalid one gets an ``invalid`` outcome."""

    function: RewardFunction[Any]
    item: Item | RawItem
    timeout: float


def default_memory_limit_mb(workers: int) -> int:
    """Half the memory this process may use (the machine's, or its cgroup's limit when
    lower), shared by the workers: together they cannot starve the server."""
    total = _memory_available_mb()
    return max(256, int(total * 0.5 / max(1, workers)))


def _memory_available_mb() -> int:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as file:
                text = file.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text) // (1024 * 1024))
    return total


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Engine:
    """Runs reward functions wherever their isolation says, with a deadline per item.

    >>> engine = Engine(functions={"exact": exact})  # doctest: +SKIP
    >>> async with engine:  # doctest: +SKIP
    ...     outcomes = await engine.run([Call(exact, Item(messages), 5.0)])
    """

    def __init__(
        self,
        *,
        functions: Mapping[str, RewardFunction[Any]],
        workers: int | None = None,
        memory_limit_mb: int | None = None,
        max_tasks_per_worker: int | None = None,
        max_processes: int | None = None,
        worker_env_drop: Sequence[str] = (),
        log_format: str = "text",
    ) -> None:
        self.functions = dict(functions)
        self.workers = default_workers() if workers is None else workers
        in_process = [fn for fn in self.functions.values() if fn.isolation == "process"]
        if self.workers == 0:
            in_process = []
        # None: derived from the machine; 0: no limit.
        if memory_limit_mb is None:
            memory_limit_mb = default_memory_limit_mb(self.workers)
        self.memory_limit_mb = memory_limit_mb or None
        self._process: ProcessExecutor | None = None
        if in_process:
            # Imported here: with no worker processes (AWS Lambda) the pool, the workers'
            # containment and multiprocessing are never loaded (a cold start's milliseconds).
            from ._containment import SECRET_VARIABLES
            from ._pool import ProcessExecutor
            from ._worker import WorkerOptions

            options = WorkerOptions(
                memory_limit_mb=self.memory_limit_mb,
                max_tasks=max_tasks_per_worker,
                max_processes=max_processes,
                env_drop=(*SECRET_VARIABLES, *worker_env_drop),
                log_format=log_format,
            )
            self._process = ProcessExecutor(
                functions=in_process, workers=self.workers, options=options
            )
        self._threads: DaemonThreads | None = None
        self._loops = LoopThreads()
        self._started = False

    def pending_tasks(self) -> int:
        """Tasks running or queued in the worker pool (for metrics)."""
        return self._process.pending if self._process is not None else 0

    def where(self, fn: RewardFunction[Any]) -> Isolation:
        """Where ``fn`` actually runs: its isolation, or threads when there are no workers."""
        if fn.isolation == "process" and self._process is None:
            return "thread"
        return fn.isolation

    async def start(self) -> None:
        """Start the workers and run every ``setup``; a function that cannot start is a
        :class:`ConfigurationError` now rather than an error on each of its items later."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        if any(self.where(fn) == "thread" for fn in self.functions.values()):
            self._threads = DaemonThreads(limit=max(4, self.workers * 4))
        for fn in self.functions.values():
            if self.where(fn) != "process" and fn.setup is not None:
                try:
                    await DaemonThreads(limit=1, name="rk-setup").run(fn.resources)
                except Exception as error:
                    raise ConfigurationError(
                        f"setup of reward function {fn.name!r} failed: {type(error).__name__}: "
                        f"{error}"
                    ) from error
        if self._process is not None:
            await loop.run_in_executor(None, self._process.start)
            await self._process.check_loaded()

    async def close(self) -> None:
        self._loops.close()
        if self._process is not None:
            self._process.stop_watchdog()
            await asyncio.get_running_loop().run_in_executor(None, self._process.close)
        self._started = False

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- evaluation ----------------------------------------------------------------------------

    async def run(
        self, calls: Sequence[Call], *, on_result: OnResult | None = None
    ) -> list[Outcome]:
        """Evaluate every call; the outcomes come back in the same order, one per call."""
        results: list[Outcome | None] = [None] * len(calls)

        def keep(index: int, outcome: Outcome | EncodedOutcome) -> None:
            if isinstance(outcome, EncodedOutcome):
                outcome = outcome.decode()
            results[index] = outcome
            if on_result is not None:
                on_result(index, outcome)

        await self._run(calls, keep)
        return [r if r is not None else failure("crashed", "no result") for r in results]

    async def run_encoded(self, calls: Sequence[Call]) -> list[EncodedOutcome]:
        """:meth:`run`, with each result as JSON: what ``/batch_evaluate`` sends as it is. A
        result evaluated in a worker process arrives as JSON and is never decoded here."""
        results: list[EncodedOutcome | None] = [None] * len(calls)

        def keep(index: int, outcome: Outcome | EncodedOutcome) -> None:
            results[index] = outcome if isinstance(outcome, EncodedOutcome) else encode(outcome)

        await self._run(calls, keep)
        lost = encode(failure("crashed", "no result"))
        return [r if r is not None else lost for r in results]

    async def run_function_encoded(
        self, fn: RewardFunction[Any], items: Sequence[Item | RawItem], timeout: float
    ) -> list[EncodedOutcome]:
        """:meth:`run_encoded` for items of one function, all under ``timeout``: a batch's
        common case, without a :class:`Call` per item or the grouping by function. Raw items
        of a pooled function go to the workers as they are, in order."""
        if self._process is not None and self.where(fn) == "process" and fn.mode == "pointwise":
            return await self._process.run_items(fn.name, items, [timeout] * len(items))
        return await self.run_encoded([Call(fn, item, timeout) for item in items])

    async def _run(
        self, calls: Sequence[Call], keep: Callable[[int, Outcome | EncodedOutcome], None]
    ) -> None:
        """Evaluate every call, handing each outcome to ``keep(index, outcome)`` when it is in:
        an Outcome, or an EncodedOutcome where the result came back from a worker process."""
        if len(calls) == 1 and calls[0].function.mode == "pointwise":
            # /evaluate: no grouping and no extra tasks (a third of a trivial request's cost).
            keep(0, await self._run_single(calls[0]))
            return
        groups: dict[tuple[str, bool], list[int]] = {}
        for index, call in enumerate(calls):
            groups.setdefault((call.function.name, call.function.mode == "batch"), []).append(index)

        def deliver(indices: list[int], outcomes: Sequence[Outcome | EncodedOutcome]) -> None:
            for index, outcome in zip(indices, outcomes, strict=True):
                keep(index, outcome)

        async def run_group(indices: list[int]) -> None:
            fn = calls[indices[0]].function
            if self._process is not None and self.where(fn) == "process" and fn.mode != "batch":
                # One call, which chunks the items itself, delivering each chunk as it finishes
                # so progress shows while a big batch runs. (Chunking here as well cut 1,000
                # items into 64 tasks instead of 8.) The workers validate raw items.
                await self._process.run_items(
                    fn.name,
                    [calls[i].item for i in indices],
                    [calls[i].timeout for i in indices],
                    on_outcomes=lambda done, outcomes: deliver(
                        [indices[i] for i in done], outcomes
                    ),
                )
                return
            indices, items = _validated(fn, indices, calls, keep)
            timeouts = [calls[i].timeout for i in indices]
            if not items:
                return
            if fn.mode == "batch":
                deliver(indices, await self._run_batch_mode(fn, items, max(timeouts)))
            elif self.where(fn) == "inline" and not fn.is_async:
                # Nothing to wait for: a plain loop, not a task per item.
                deliver(indices, [evaluate_item(fn, item) for item in items])
            else:
                outcomes = await asyncio.gather(
                    *(self._run_one(fn, item, t) for item, t in zip(items, timeouts, strict=True))
                )
                deliver(indices, list(outcomes))

        await asyncio.gather(*(run_group(indices) for indices in groups.values()))

    async def _run_single(self, call: Call) -> Outcome | EncodedOutcome:
        fn = call.function
        if self._process is not None and self.where(fn) == "process":
            (outcome,) = await self._process.run_items(fn.name, [call.item], [call.timeout])
            return outcome
        item = validated(call.item, fn)
        if isinstance(item, Outcome):
            return item
        return await self._run_one(fn, item, call.timeout)

    async def _run_one(self, fn: RewardFunction[Any], item: Item, timeout: float) -> Outcome:
        if fn.is_async and self.where(fn) == "thread":
            return await self._on_loop_thread(fn, aevaluate_item(fn, item), timeout)
        if self.where(fn) == "thread":
            assert self._threads is not None
            return await _with_deadline(self._threads.run(evaluate_item, fn, item), timeout)
        if fn.is_async:
            return await _with_deadline(aevaluate_item(fn, item), timeout)
        # Sync and inline: the caller asked for no isolation (cheap functions only).
        return evaluate_item(fn, item)

    async def _run_batch_mode(
        self, fn: RewardFunction[Any], items: list[Item], timeout: float
    ) -> Sequence[Outcome | EncodedOutcome]:
        if self.where(fn) == "process":
            assert self._process is not None
            return await self._process.run_group(fn.name, items, timeout)
        if fn.is_async and self.where(fn) == "thread":
            outcome = await self._on_loop_thread(fn, aevaluate_group(fn, items), timeout)
        elif self.where(fn) == "thread":
            assert self._threads is not None
            outcome = await _with_deadline(self._threads.run(evaluate_group, fn, items), timeout)
        elif fn.is_async:
            outcome = await _with_deadline(aevaluate_group(fn, items), timeout)
        else:
            return evaluate_group(fn, items)
        return outcome if isinstance(outcome, list) else [outcome] * len(items)

    async def _on_loop_thread(
        self, fn: RewardFunction[Any], coroutine: Coroutine[Any, Any, _T], timeout: float
    ) -> _T | Outcome:
        """Run an async reward on its own loop thread (see _loops.py), under ``timeout``."""
        future = self._loops.for_function(fn.name).submit(coroutine)
        outcome = await _with_deadline(asyncio.wrap_future(future), timeout)
        if isinstance(outcome, Outcome) and outcome.status == "timeout":
            future.cancel()
            if self._loops.abandon_if_stuck(fn.name, min(timeout, _STUCK_SECONDS)):
                logger.warning(
                    "async reward %r blocked its event loop past its deadline; its next "
                    "calls get a new loop",
                    fn.name,
                )
        return outcome


def _validated(
    fn: RewardFunction[Any],
    indices: list[int],
    calls: Sequence[Call],
    keep: Callable[[int, Outcome | EncodedOutcome], None],
) -> tuple[list[int], list[Item]]:
    """The valid items among ``indices`` (validating raw ones here), handing each invalid
    one's outcome to ``keep``."""
    valid: list[int] = []
    items: list[Item] = []
    for index in indices:
        item = validated(calls[index].item, fn)
        if isinstance(item, Outcome):
            keep(index, item)
        else:
            valid.append(index)
            items.append(item)
    return valid, items


# A loop thread that has not run a callback for this long after a timeout is abandoned.
_STUCK_SECONDS = 1.0


async def _with_deadline(awaitable: Awaitable[_T], timeout: float) -> _T | Outcome:
    """``awaitable``'s result, or a timeout outcome as soon as ``timeout`` seconds passed.

    Not ``asyncio.wait_for``: it waits for the cancelled call to finish and then returns what
    the call returned, so a reward that swallows CancelledError (``except BaseException``)
    would turn its timeout into a score, or hang the request as long as it keeps running.
    """
    start = time.perf_counter()
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait((task,), timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()  # not awaited: whatever it does after this is not waited for
        task.add_done_callback(_consume)
        elapsed = (time.perf_counter() - start) * 1000.0
        return failure(
            "timeout", f"the reward function ran past its {timeout:g}s deadline", elapsed
        )
    if task.cancelled():  # the reward cancelled itself (or raised CancelledError)
        return failure("error", "the reward function was cancelled", _ms(start))
    if time.perf_counter() - start > timeout:
        # A call that blocked its loop finished late, and the timer could not fire before it.
        return failure(
            "timeout", f"the reward function ran past its {timeout:g}s deadline", _ms(start)
        )
    return task.result()


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve a timed-out call's exception so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
