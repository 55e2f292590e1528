"""The process pool: killable workers (pebble), chunked dispatch, and recovery.

Why pebble: it kills a worker whose task passes its timeout and starts a new one, and it
reports a worker that died mid-task (segfault, ``os._exit``, OOM kill) as ``ProcessExpired``
while the pool keeps serving. What it does not do, and this module adds: chunking items to
amortise inter-process cost, re-running a failed chunk item by item so only the culprit fails,
and rebuilding the pool when it breaks (a worker dying while idle breaks a pebble pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import signal
import sys
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._errors import ConfigurationError
from .._extras import require
from .._function import RewardFunction
from . import _worker
from ._outcome import Item, Outcome, failure

__all__ = ["ProcessExecutor"]

logger = logging.getLogger("reward_kit.engine")

# Extra seconds past an item's deadline before the worker is killed: the soft deadline inside
# the worker gets the first chance, so a Python-level hang costs no worker restart.
HARD_GRACE = 1.0
# A worker stops taking items from its chunk after this long and hands the rest back, so a
# chunk of slow items never nears its hard deadline.
MAX_CHUNK_SECONDS = 0.5
MAX_CHUNK_ITEMS = 256
CHUNKS_PER_WORKER = 4
_BROKEN_RETRIES = 2


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
        memory_limit_mb: int | None = None,
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
        self._sources = [(fn.name, fn.source or "") for fn in functions]
        self._memory_limit_mb = memory_limit_mb
        self._pool: Any = None
        self._lock = threading.Lock()
        self._generation = 0
        # Futures of the current pool not finished yet: a broken pool stops answering them.
        self._outstanding: set[Future[Any]] = set()
        self.pending = 0  # tasks scheduled and not finished (running or queued)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        if sys.platform == "linux":
            context = multiprocessing.get_context("forkserver")
            # Workers fork from a server that already imported the engine: restarts are cheap.
            context.set_forkserver_preload(["reward_kit.service._worker"])
        else:
            context = multiprocessing.get_context("spawn")
        self._generation += 1
        pool = self._pebble.ProcessPool(
            max_workers=self.workers,
            initializer=_worker.initialize,
            initargs=(self._sources, list(sys.path), self._memory_limit_mb),
            context=context,
        )
        _drain_before_expiring(pool, context)
        return pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join(timeout=10)

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

    def chunk_size(self, count: int) -> int:
        return max(1, min(MAX_CHUNK_ITEMS, math.ceil(count / (self.workers * CHUNKS_PER_WORKER))))

    async def run_items(self, name: str, items: list[Item], timeouts: list[float]) -> list[Outcome]:
        """Evaluate pointwise items in chunks; results come back in input order."""
        results: list[Outcome | None] = [None] * len(items)
        size = self.chunk_size(len(items))
        chunks = [list(range(i, min(i + size, len(items)))) for i in range(0, len(items), size)]
        await asyncio.gather(*(self._run_chunk(name, c, items, timeouts, results) for c in chunks))
        return [r if r is not None else failure("crashed", "lost") for r in results]

    async def _run_chunk(
        self,
        name: str,
        indices: list[int],
        items: list[Item],
        timeouts: list[float],
        results: list[Outcome | None],
    ) -> None:
        pending = indices
        while pending:
            chunk_timeouts = [timeouts[i] for i in pending]
            budget = min(MAX_CHUNK_SECONDS, min(chunk_timeouts))
            hard = budget + max(chunk_timeouts) + HARD_GRACE
            args = (name, [items[i] for i in pending], chunk_timeouts, budget)
            report = await self._call(_worker.run_chunk, args, hard)
            if isinstance(report, list):
                for index, outcome in zip(pending, report, strict=False):
                    results[index] = outcome
                pending = pending[len(report) :]
                continue
            if len(pending) > 1:
                # The chunk was killed or crashed: re-run its items alone so only the culprit
                # fails; the others get a fresh deadline of their own.
                await asyncio.gather(
                    *(self._run_chunk(name, [i], items, timeouts, results) for i in pending)
                )
            else:
                results[pending[0]] = report
            return

    async def run_group(self, name: str, items: list[Item], timeout: float) -> list[Outcome]:
        """One call of a batch-mode function in a worker."""
        report = await self._call(_worker.run_group, (name, items, timeout), timeout + HARD_GRACE)
        if isinstance(report, list):
            return report
        return [report] * len(items)

    async def _call(self, fn: Any, args: tuple[Any, ...], hard: float) -> list[Outcome] | Outcome:
        """Schedule one task; a kill or a crash comes back as a single failure Outcome."""
        for _attempt in range(_BROKEN_RETRIES + 1):
            future, generation = self._schedule(fn, args, hard)
            self.pending += 1
            future.add_done_callback(self._task_done)
            try:
                report: list[Outcome] = await asyncio.wrap_future(future)
                return report
            except FutureTimeout:
                return failure(
                    "timeout",
                    f"the reward function ran past its deadline and its worker was killed "
                    f"after {hard - HARD_GRACE:g}s",
                    hard * 1000.0,
                )
            except self._pebble.ProcessExpired as error:
                return failure("crashed", _signal_name(error.exitcode))
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as error:
                if not _is_broken_pool(error):
                    return failure("error", f"{type(error).__name__}: {error}")
                await asyncio.get_running_loop().run_in_executor(None, self._recover, generation)
        return failure("crashed", "the worker pool kept breaking; see the server log")

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


def _drain_before_expiring(pool: Any, context: Any) -> None:
    """Give ``pool`` a pool manager that reads a dead worker's last messages before failing its
    task.

    pebble reads the workers' messages (``Acknowledgement``: worker W took task T; results) on
    one thread and notices dead workers on another. A reward that dies as soon as it starts
    (``os._exit``, a segfault) can be noticed before its acknowledgement is read: pebble then
    finds no task to fail, reads the acknowledgement later, and the task waits for its hard
    deadline to come back as a *timeout* (or, if nothing else was running, the whole pool
    breaks). Likewise a result still in the pipe when its worker dies gets reported as a crash.
    Deferring the expiry to the message thread until the pipe is empty fixes both: everything
    the worker sent before it died has then been read. Left as is if pebble's internals differ.
    """
    manager: Any = getattr(pool, "_pool_manager", None)
    needed = ("handle_worker_expiration", "process_next_message", "worker_manager")
    if manager is None or not all(hasattr(manager, name) for name in needed):
        return
    pool._pool_manager = _draining_manager(type(manager))(pool._context, context)


def _draining_manager(base: type) -> type:
    class DrainingPoolManager(base):  # type: ignore[misc]
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self._deaths: list[tuple[int, int | None]] = []
            self._deaths_lock = threading.Lock()

        def handle_worker_expiration(self, expiration: tuple[int, int | None]) -> None:
            with self._deaths_lock:  # the pool manager thread: only note it
                self._deaths.append(expiration)

        def process_next_message(self, timeout: float) -> None:
            super().process_next_message(timeout)  # the message thread
            with self._deaths_lock:
                deaths, self._deaths = self._deaths, []
            if deaths and self._pending_messages():
                with self._deaths_lock:  # not drained yet: after the next message
                    self._deaths[:0] = deaths
                return
            for expiration in deaths:
                super().handle_worker_expiration(expiration)

        def _pending_messages(self) -> bool:
            try:
                return bool(self.worker_manager.pool_channel.poll(0))
            except (OSError, ValueError):  # the pool is stopping and closed its pipes
                return False

    return DrainingPoolManager


def _is_broken_pool(error: BaseException) -> bool:
    return isinstance(error, BrokenProcessPool) or (
        isinstance(error, RuntimeError)
        and ("not active" in str(error) or "Unexpected error" in str(error))
    )
