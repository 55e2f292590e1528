"""What keeps one item's side effects from reaching the next item or outliving its worker.

Runs inside a worker process (see _worker.py). After each item:

* every process the item started is killed: the worker is a *child subreaper*, so even a
  double-forked daemon or a ``setsid`` escapee stays in its tree and is found there;
* the working directory, ``os.environ`` and ``sys.path`` are put back as they were after setup;
* the worker is marked for retirement when the item left threads running, its resident memory
  neared the limit, it hit ``MemoryError``, or it served ``max_tasks`` items. A retiring worker
  exits at the start of its next task, before running anything, so the parent can hand that
  task to a fresh worker (see ``RETIRE_EXIT_CODE``).

Processes and threads that exist once the functions' ``setup`` ran are the worker's own
(a server a reward started in ``setup``, say) and are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import fnmatch
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._output import OutputCap
from ._process_tree import (
    ChildCheck,
    ThreadCounter,
    children,
    descendants,
    has_children,
    kill_trees,
    thread_count,
)

__all__ = [
    "RETIRE_EXIT_CODE",
    "Containment",
    "die_with_parent",
    "make_subreaper",
    "safe_import_path",
    "scrub_environment",
    "without_variables",
]

logger = logging.getLogger("reward_kit.worker")

# A worker that must be replaced exits with this code at the start of a task it did not run;
# the parent runs that task again on a fresh worker.
RETIRE_EXIT_CODE = 113
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1
# Server secrets a reward never needs; the operator can name more (--worker-env-drop).
SECRET_VARIABLES = (
    "RK_API_KEYS",
    "RK_API_KEYS_FILE",
    "RK_API_KEY",
    "RK_API_KEY_FILE",
    "RK_SSL_KEYFILE",
    "RK_*SECRET*",
    "RK_*TOKEN*",
    "RK_*PASSWORD*",
)
# Resident memory above this share of the limit retires the worker before it fails an item.
_RSS_SHARE = 0.8
_MEMORY_CHECK_SECONDS = 0.05
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def make_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so a server that is
    itself killed (SIGKILL, the OOM killer) leaves no fork server or worker behind."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def scrub_environment(patterns: Iterable[str]) -> list[str]:
    """Remove variables matching ``patterns`` (shell globs) from ``os.environ``."""
    dropped = _matching(patterns)
    for name in dropped:
        del os.environ[name]
    return dropped


@contextlib.contextmanager
def without_variables(patterns: Iterable[str]) -> Iterator[None]:
    """Variables matching ``patterns`` are out of ``os.environ`` (and the C environment that
    child processes inherit) inside the block, and back after it."""
    removed = {name: os.environ[name] for name in _matching(patterns)}
    for name in removed:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(removed)


@contextlib.contextmanager
def safe_import_path() -> Iterator[tuple[str, ...]]:
    """Processes started inside the block leave the working directory off their import path
    (``PYTHONSAFEPATH``, Python 3.11+); yields the variables the block added, for the workers
    to drop again.

    multiprocessing's fork server is ``python -c``, whose first import path is the working
    directory, and 3.11's ignores the path it is given: a ``reward_kit`` there (a checkout, a
    vendored copy) or a file named like a dependency would be what every worker imports, not
    what the server runs. The workers drop the variable (unless the operator set it), since it
    would change how the Python scripts a reward starts find their modules.
    """
    if "PYTHONSAFEPATH" in os.environ:
        yield ()
        return
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield ("PYTHONSAFEPATH",)
    finally:
        os.environ.pop("PYTHONSAFEPATH", None)


def _matching(patterns: Iterable[str]) -> list[str]:
    patterns = tuple(patterns)
    return [name for name in os.environ if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def _environ_data() -> dict[Any, Any]:
    """``os.environ``'s encoded store: what it holds, without decoding every entry."""
    data = getattr(os.environ, "_data", None)
    return data if isinstance(data, dict) else dict(os.environ)


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class Containment:
    """The per-worker bookkeeping described in the module docstring."""

    def __init__(
        self,
        *,
        memory_limit_mb: int | None,
        max_tasks: int | None,
        output_limit: int,
        log_format: str = "text",
    ) -> None:
        self.memory_limit_mb = memory_limit_mb
        self.max_tasks = max_tasks
        self.retire_reason: str | None = None
        self.output = OutputCap(limit=output_limit, log_format=log_format)
        self._served = 0
        self._pid = os.getpid()
        self._resident: frozenset[int] = frozenset()
        self._threads = 0
        self._thread_count: Callable[[], int] = thread_count
        self._has_children: Callable[[bool], bool] = lambda settled: has_children()
        self._cwd = ""
        self._environ: dict[Any, Any] = {}
        self._variables: dict[str, str] = {}
        self._memory_checked = 0.0
        self._path: list[str] = []

    def settle(self) -> None:
        """Record the worker's own state once setup ran: what is left alone later."""
        self.output.start()
        self._resident = frozenset(descendants(self._pid))
        self._thread_count = ThreadCounter()
        self._threads = self._thread_count()
        # Settled: the main thread and the output forwarder, which never starts a process.
        self._has_children = ChildCheck(threads=1 + self.output.forwarding)
        self._cwd = os.getcwd()
        self._environ = dict(_environ_data())
        self._variables = dict(os.environ)
        self._path = list(sys.path)

    def begin(self) -> None:
        self.output.new_item()

    def end(self, *, ran_out_of_memory: bool = False) -> None:
        """Clean up after one item; decide whether the worker must be replaced.

        The common case (nothing to clean, no reason to retire) is written out in this one
        function, with three system calls: it runs after every item, and the calls and
        lookups of a helper per check cost a trivial item 2 us."""
        self._served += 1
        threads = self._thread_count()
        if self._has_children(threads == self._threads and self.output.forwarding):
            self._kill_strays()
        try:  # not contextlib.suppress: this runs after every item
            if os.getcwd() != self._cwd:
                os.chdir(self._cwd)
        except OSError:
            pass
        # Compared encoded, as a plain dict: comparing os.environ decodes every entry.
        if getattr(os.environ, "_data", None) != self._environ:
            self._restore_environ()
        if sys.path != self._path:
            sys.path[:] = self._path
        memory_due = time.monotonic() - self._memory_checked > _MEMORY_CHECK_SECONDS
        if self.retire_reason is None and (
            ran_out_of_memory
            or threads > self._threads
            or self.max_tasks is not None
            or (self.memory_limit_mb and memory_due)
        ):
            self.retire_reason = self._reason_to_retire(ran_out_of_memory, threads)

    def _kill_strays(self) -> None:
        strays = [pid for pid in children(self._pid) if pid not in self._resident]
        for _ in range(3):  # a stray forking while it is being killed leaves orphans behind
            if not strays:
                break
            for pid in kill_trees(strays):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            strays = [pid for pid in children(self._pid) if pid not in self._resident]
        for pid in strays:
            logger.error("worker %d: could not stop process %d a reward started", self._pid, pid)

    def _restore_environ(self) -> None:
        if _environ_data() != self._environ:  # os.environ itself may have been replaced
            os.environ.clear()
            os.environ.update(self._variables)

    def _reason_to_retire(self, ran_out_of_memory: bool, threads: int) -> str | None:
        if ran_out_of_memory:
            return "it ran out of memory"
        if self.max_tasks is not None and self._served >= self.max_tasks:
            return f"it served {self._served} items (max tasks per worker)"
        if threads > self._threads:
            return f"a reward left {threads - self._threads} thread(s) running"
        now = time.monotonic()
        if self.memory_limit_mb and now - self._memory_checked > _MEMORY_CHECK_SECONDS:
            # Not after every item: reading /proc costs more than a trivial reward.
            self._memory_checked = now
            resident = _resident_bytes()
            if resident > _RSS_SHARE * self.memory_limit_mb * 1024 * 1024:
                return f"its resident memory ({resident >> 20} MiB) neared the limit"
        return None
