"""The process pool: killable workers (pebble), chunked dispatch, and recovery.

Why pebble: it kills a worker whose task passes its timeout and starts a new one, and it
reports a worker that died mid-task (segfault, ``os._exit``, OOM kill) as ``ProcessExpired``
while the pool keeps serving. What it does not do, and this module adds: chunking items to
amortise inter-process cost, re-running a failed chunk item by item so only the culprit fails,
rebuilding the pool when it breaks (a worker dying while idle breaks a pebble pool), pickling
each task before pebble sees it (pebble pickles on its scheduler thread, and an error it does
not expect there, such as a RecursionError, kills that thread and hangs the pool), and a
watchdog: no pool-internal fault can keep a request waiting much past its item's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, cast

from .._errors import ConfigurationError
from .._extras import require
from .._function import RewardFunction
from . import _worker
from ._chunking import ChunkSizer
from ._containment import RETIRE_EXIT_CODE, safe_import_path, without_variables
from ._draining import drain_before_expiring
from ._encoded import EncodedOutcome, ItemFields, WireOutcome, encode, from_wire
from ._orphans import NEWBORN_SECONDS, sweep_orphans
from ._outcome import Item, Outcome, describe_exception, failure
from ._raw import RawItem, encode_chunk, validated
from ._worker import WorkerOptions

__all__ = ["OnOutcomes", "ProcessExecutor"]

logger = logging.getLogger("reward_kit.engine")

# Told which items (by their index in the call) finished, and how.
OnOutcomes = Callable[[list[int], list[EncodedOutcome]], None]

# Extra seconds past an item's deadline before the worker is killed: the soft deadline inside
# the worker gets the first chance, so a Python-level hang costs no worker restart.
HARD_GRACE = 1.0
# A worker stops taking items from its chunk after this long and hands the rest back, so a
# chunk of slow items never nears its hard deadline.
MAX_CHUNK_SECONDS = 0.5
_BROKEN_RETRIES = 2
# The watchdog's margin past a task's hard deadline (counted from when the task was seen
# running) before it gives up on pebble killing the worker: the item is then a timeout and the
# pool is rebuilt. It also rebuilds a pool whose internal threads died. Checked this often:
SAFETY_GRACE = 2.0
WATCH_INTERVAL = 0.25


class _TaskRaised(Exception):
    """A task ended with a BaseException that is not an Exception (never re-raised here)."""


class _Stalled(Exception):
    """Set by the watchdog on a task the pool did not finish or kill in time."""


class _Watch:
    """One awaited task, as the watchdog sees it."""

    __slots__ = ("future", "generation", "limit", "started", "waiter")

    def __init__(
        self, future: Future[Any], waiter: asyncio.Future[Any], limit: float, generation: int
    ) -> None:
        self.future = future
        self.waiter = waiter
        self.limit = limit  # seconds of running before the watchdog steps in
        self.generation = generation
        self.started: float | None = None  # when first seen running (queued until then)


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "the worker process died"
    if exitcode < 0:
        try:
            return f"the worker process was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"the worker process was killed by signal {-exitcode}"
    return f"the worker process exited with code {exitcode}"


class ProcessExecutor:
    """Runs process-isolated reward functions on ``workers`` killable worker processes."""

    def __init__(
        self,
        *,
        functions: list[RewardFunction[Any]],
        workers: int,
        options: WorkerOptions | None = None,
    ) -> None:
        self._pebble = require("pebble", extra="server", feature="the worker pool")
        missing = [fn.name for fn in functions if fn.source is None]
        if missing:
            raise ConfigurationError(
                f"reward function(s) {', '.join(map(repr, missing))} cannot run in a worker "
                "process: define them at module level of an importable file, or use "
                "isolation='thread'"
            )
        self.workers = workers
        self.functions = {fn.name: fn for fn in functions}
        self._chunks = ChunkSizer(workers=workers)
        self._sources = [(fn.name, fn.source or "") for fn in functions]
        self._options = options or WorkerOptions()
        self._pool: Any = None
        self._lock = threading.Lock()
        self._generation = 0
        # Futures of the current pool not finished yet: a broken pool stops answering them.
        self._outstanding: set[Future[Any]] = set()
        self.pending = 0  # tasks scheduled and not finished (running or queued)
        self._watches: set[_Watch] = set()
        self._watchdog: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        if sys.platform == "linux":
            context = multiprocessing.get_context("forkserver")
            # Workers fork from a server that already imported the engine: restarts are cheap.
            context.set_forkserver_preload(
                ["reward_kit.engine._forkserver", "reward_kit.engine._worker"]
            )
            # The fork server's environment is every worker's /proc/self/environ: start it
            # without the server's secrets (removing them from os.environ later is too late).
            with without_variables(self._options.env_drop), safe_import_path() as added:
                from multiprocessing import forkserver

                forkserver.ensure_running()
            self._options = self._options._replace(
                env_drop=tuple(dict.fromkeys((*self._options.env_drop, *added)))
            )
        else:
            context = multiprocessing.get_context("spawn")
        self._generation += 1
        pool = self._pebble.ProcessPool(
            max_workers=self.workers,
            initializer=_worker.initialize,
            initargs=(self._sources, list(sys.path), self._options),
            context=context,
        )
        drain_before_expiring(pool, context)
        return pool

    def stop_watchdog(self) -> None:
        """Cancel the watchdog task (call on its event loop, before :meth:`close`)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join(timeout=10)
            sweep_orphans(workers=set(), spare_newborns=False)

    def _recover(self, generation: int) -> None:
        """Replace a broken pool (once, whoever notices first)."""
        with self._lock:
            if self._generation != generation or self._pool is None:
                return
            old, orphans = self._pool, self._outstanding
            logger.warning("worker pool broke; starting a new one")
            self._pool, self._outstanding = self._new_pool(), set()
        # stop() alone only flags the pool: join() stops its surviving workers and closes its
        # pipes, which would otherwise leak with every broken pool.
        old.stop()
        old.join()
        self.sweep()
        # A broken pebble pool never answers the tasks it had queued but not yet handed out:
        # fail them so their callers run them again on the new pool instead of waiting forever.
        for future in orphans.copy():
            with contextlib.suppress(InvalidStateError):
                if not future.done():
                    future.set_exception(BrokenProcessPool("the worker pool broke"))

    def _schedule(self, fn: Any, args: tuple[Any, ...], timeout: float) -> tuple[Future[Any], int]:
        with self._lock:
            if self._pool is None:
                raise RuntimeError("the worker pool is closed")
            try:
                future: Future[Any] = self._pool.schedule(fn, args=args, timeout=timeout)
            except RuntimeError as error:
                # pebble refuses new work once its pool broke, e.g. after a worker died while
                # no task was running; report it like a broken task so _call recovers.
                if not _is_broken_pool(error):
                    raise
                future = Future()
                future.set_exception(BrokenProcessPool(str(error)))
                return future, self._generation
            self._outstanding.add(future)
            future.add_done_callback(self._outstanding.discard)
            return future, self._generation

    # -- evaluation ----------------------------------------------------------------------------

    async def run_items(
        self,
        name: str,
        items: Sequence[Item | RawItem],
        timeouts: list[float],
        *,
        on_outcomes: OnOutcomes | None = None,
    ) -> list[EncodedOutcome]:
        """Evaluate pointwise items in chunks; results come back in input order, as JSON.
        Raw items are validated in the workers (see _raw.py).

        ``on_outcomes(indices, outcomes)``, if given, hears of each item once, as soon as its
        chunk (or the part of it a worker finished) is back."""
        results: list[EncodedOutcome | None] = [None] * len(items)

        def record(indices: list[int], outcomes: list[EncodedOutcome]) -> None:
            for index, outcome in zip(indices, outcomes, strict=True):
                results[index] = outcome
            self._chunks.observe(name, outcomes)
            if on_outcomes is not None:
                on_outcomes(indices, outcomes)

        size = self._chunks.size(name, len(items))
        chunks = [list(range(i, min(i + size, len(items)))) for i in range(0, len(items), size)]
        mine = list(items)  # raw items validated here are replaced by their Item
        await asyncio.gather(*(self._run_chunk(name, c, mine, timeouts, record) for c in chunks))
        lost = [i for i, r in enumerate(results) if r is None]
        if lost:
            record(lost, [encode(failure("crashed", "lost"))] * len(lost))
        return cast("list[EncodedOutcome]", results)  # every slot is recorded by now

    async def _run_chunk(
        self,
        name: str,
        indices: list[int],
        items: list[Item | RawItem],
        timeouts: list[float],
        record: OnOutcomes,
    ) -> None:
        pending = indices
        while pending:
            fields: bytes | list[ItemFields] | None = encode_chunk([items[i] for i in pending])
            if fields is None:  # not raw JSON for the worker to validate: validated here
                pending = self._validate_here(name, pending, items, record)
                if not pending:
                    return
                # Plain tuples: pickling a NamedTuple calls back into Python for each one.
                fields = [tuple(cast("Item", items[i])) for i in pending]
            chunk_timeouts = [timeouts[i] for i in pending]
            budget = min(MAX_CHUNK_SECONDS, min(chunk_timeouts))
            hard = budget + max(chunk_timeouts) + HARD_GRACE
            args = (name, fields, chunk_timeouts, budget)
            report = await self._call(_worker.run_chunk, args, hard)
            if isinstance(report, list):
                done = from_wire(report[: len(pending)])
                record(pending[: len(done)], done)
                pending = pending[len(done) :]
                continue
            if len(pending) > 1:
                # The chunk was killed or crashed: re-run its items alone so only the culprit
                # fails; the others get a fresh deadline of their own.
                await asyncio.gather(
                    *(self._run_chunk(name, [i], items, timeouts, record) for i in pending)
                )
            else:
                record(pending, [encode(report)])
            return

    def _validate_here(
        self, name: str, pending: list[int], items: list[Item | RawItem], record: OnOutcomes
    ) -> list[int]:
        """Validate the raw items among ``pending`` in this process (in place, in ``items``),
        recording the invalid ones; returns the rest."""
        fn = self.functions[name]
        valid: list[int] = []
        for index in pending:
            checked = validated(items[index], fn)
            if isinstance(checked, Outcome):
                record([index], [encode(checked)])
            else:
                items[index] = checked
                valid.append(index)
        return valid

    async def run_group(self, name: str, items: list[Item], timeout: float) -> list[EncodedOutcome]:
        """One call of a batch-mode function in a worker."""
        report = await self._call(_worker.run_group, (name, items, timeout), timeout + HARD_GRACE)
        if isinstance(report, list):
            return from_wire(report)
        return [encode(report)] * len(items)

    async def _call(
        self, fn: Any, args: tuple[Any, ...], hard: float
    ) -> list[WireOutcome] | Outcome:
        """Schedule one task; a kill or a crash comes back as a single failure Outcome."""
        try:
            # Pickled here, not on pebble's scheduler thread: an argument that cannot be sent
            # (nested past the recursion limit, an unpicklable object from a direct Engine
            # user) fails this task alone instead of killing that thread and the pool with it.
            packed = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            return failure(
                "invalid",
                f"the item's arguments cannot be sent to a worker process: "
                f"{describe_exception(error)}",
            )
        retired = 0
        attempt = 0
        while attempt <= _BROKEN_RETRIES:
            attempt += 1
            future, generation = self._schedule(_worker.run_packed, (packed,), hard)
            self.pending += 1
            future.add_done_callback(self._task_done)
            try:
                report: list[WireOutcome] = await self._wait(future, hard, generation)
                return report
            except FutureTimeout:
                await self._sweep_soon()
                return failure(
                    "timeout",
                    f"the reward function ran past its deadline and its worker was killed "
                    f"after {hard - HARD_GRACE:g}s",
                    hard * 1000.0,
                )
            except _Stalled:
                await self._sweep_soon()
                return failure(
                    "timeout",
                    f"the reward function ran past its deadline ({hard - HARD_GRACE:g}s) and "
                    "the worker pool did not stop it; the pool was restarted",
                    (hard + SAFETY_GRACE) * 1000.0,
                )
            except self._pebble.ProcessExpired as error:
                await self._sweep_soon()
                if error.exitcode == RETIRE_EXIT_CODE and retired < self.workers + 1:
                    # The worker retired before running this task (see _worker.run_packed).
                    retired += 1
                    attempt -= 1
                    continue
                return failure("crashed", _signal_name(error.exitcode))
            except asyncio.CancelledError:
                future.cancel()
                raise
            except _TaskRaised as error:
                return failure("error", str(error))
            except Exception as error:
                if not _is_broken_pool(error):
                    return failure("error", describe_exception(error))
                await asyncio.get_running_loop().run_in_executor(None, self._recover, generation)
        return failure("crashed", "the worker pool kept breaking; see the server log")

    async def _wait(self, future: Future[Any], hard: float, generation: int) -> Any:
        """Await ``future`` under the watchdog's eye (see :meth:`_watch_tasks`)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()

        def settle(done: Future[Any]) -> None:  # on a pebble thread
            # Not asyncio.wrap_future: the watchdog may settle the waiter first, which a
            # wrapped future would later trip over.
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                loop.call_soon_threadsafe(_copy_result, done, waiter)

        future.add_done_callback(settle)
        watch = _Watch(future, waiter, hard + SAFETY_GRACE, generation)
        self._watches.add(watch)
        if self._watchdog is None or self._watchdog.done() or self._watchdog.get_loop() is not loop:
            self._watchdog = loop.create_task(self._watch_tasks())
        try:
            return await waiter
        finally:
            self._watches.discard(watch)

    async def _watch_tasks(self) -> None:
        """The safety net: while tasks are awaited, fail one that has run past its hard
        deadline plus SAFETY_GRACE without pebble killing it, and rebuild a pool whose internal
        threads died (pebble never answers its tasks then). Either way the pool is rebuilt."""
        loop = asyncio.get_running_loop()
        while self._watches:
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            stalled: set[int] = set()
            dead = self._dead_generation()
            if dead is not None:
                stalled.add(dead)
            for watch in list(self._watches):
                if watch.waiter.done():
                    continue
                if watch.started is None:
                    if watch.future.running():
                        watch.started = now
                elif now - watch.started > watch.limit:
                    logger.error("a task ran past its hard deadline and the pool did not stop it")
                    watch.waiter.set_exception(_Stalled())
                    stalled.add(watch.generation)
            for generation in stalled:
                # Fails the old pool's other tasks with BrokenProcessPool: _call re-runs them.
                await loop.run_in_executor(None, self._recover, generation)
            self.sweep()

    def _dead_generation(self) -> int | None:
        """The current pool's generation if one of pebble's threads (scheduler, manager,
        messages) died, else None."""
        with self._lock:  # the pool and its generation change together in _recover
            loops = getattr(self._pool, "_loops", ())  # pebble internals; () if they change
            if any(not thread.is_alive() for thread in loops):
                logger.error("a thread of the worker pool died")
                return self._generation
        return None

    def worker_pids(self) -> set[int]:
        """The pids of the current pool's workers (pebble internals; empty if they change)."""
        with self._lock:
            manager = getattr(getattr(self._pool, "_pool_manager", None), "worker_manager", None)
            return set(getattr(manager, "workers", {}))

    def sweep(self) -> None:
        """Kill what dead workers left running (see _forkserver.py)."""
        sweep_orphans(workers=self.worker_pids())

    async def _sweep_soon(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.sweep)
        # Orphans that lead their own group are spared while young: look again once they
        # are not.
        loop.call_later(NEWBORN_SECONDS + 0.5, loop.run_in_executor, None, self.sweep)

    def _task_done(self, future: Future[Any]) -> None:
        self.pending -= 1

    async def check_loaded(self) -> None:
        """Wait for a worker to load the targets; fail fast if one could not load or set up."""
        future, _ = self._schedule(_worker.load_report, (), 600)
        broken: dict[str, str] = await asyncio.wrap_future(future)
        if broken:
            raise ConfigurationError(
                "reward functions failed to start in the worker processes: "
                + "; ".join(broken.values())
            )


def _copy_result(source: Future[Any], waiter: asyncio.Future[Any]) -> None:
    if waiter.done():  # settled by the watchdog, or its caller was cancelled
        return
    if source.cancelled():
        waiter.cancel()
        return
    error = source.exception()
    if error is not None and not isinstance(error, Exception):
        # pebble ships back whatever the task raised; a SystemExit or KeyboardInterrupt
        # re-raised on the event loop would stop the server, so it is this task's error.
        error = _TaskRaised(describe_exception(error))
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(source.result())


def _is_broken_pool(error: BaseException) -> bool:
    return isinstance(error, BrokenProcessPool) or (
        isinstance(error, RuntimeError)
        and ("not active" in str(error) or "Unexpected error" in str(error))
    )
