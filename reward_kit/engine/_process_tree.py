"""Looking at this process's tree: its threads, its children and everything below them.

The checks a worker makes after every item (see _containment.py) are here, each as cheap as
the kernel allows: they run 50,000 times a second on a trivial reward.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable

__all__ = [
    "ChildCheck",
    "ThreadCounter",
    "children",
    "descendants",
    "has_children",
    "kill_trees",
    "thread_count",
]


def children(pid: int) -> list[int]:
    """The children of every thread of ``pid``."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as file:
                found.extend(int(part) for part in file.read().split())
        except OSError:
            continue
    return found


def descendants(pid: int, *, skip: frozenset[int] = frozenset()) -> list[int]:
    """Every process below ``pid`` (children first), not descending into ``skip``."""
    found: list[int] = []
    stack = [child for child in children(pid) if child not in skip]
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children(child))
    return found


def kill_trees(roots: Iterable[int]) -> list[int]:
    """SIGKILL each root and everything below it; returns the pids signalled."""
    killed: list[int] = []
    for root in roots:
        for pid in [root, *descendants(root)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def has_children() -> bool:
    """Whether this process has a child, of any of its threads (``waitid``)."""
    try:  # WNOWAIT: look, do not reap
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def thread_count() -> int:
    """This process's threads as the kernel counts them: C-library threads and
    ``_thread.start_new_thread`` ones too, which ``threading`` does not see."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


class ThreadCounter:
    """:func:`thread_count` for the price of one ``fstat`` (about 1 us, against 4 for the
    listing, after every item): on Linux the link count of ``/proc/PID/task`` is the number of
    threads plus 2. Checked against the listing when opened; if that does not hold, or the
    descriptor is no longer that directory (a reward closed or replaced it), it lists."""

    def __init__(self) -> None:
        self._fd = -1
        self._identity = (0, 0)
        try:
            fd = os.open("/proc/self/task", os.O_RDONLY | os.O_DIRECTORY)
        except (OSError, AttributeError):  # no procfs; no O_DIRECTORY off POSIX
            return
        stat = os.fstat(fd)
        if stat.st_nlink - 2 == thread_count():
            self._fd, self._identity = fd, (stat.st_dev, stat.st_ino)
        else:
            os.close(fd)

    def __call__(self) -> int:
        if self._fd >= 0:
            try:
                stat = os.fstat(self._fd)
            except OSError:
                return thread_count()
            if (stat.st_dev, stat.st_ino) == self._identity:
                return stat.st_nlink - 2
        return thread_count()


class ChildCheck:
    """:func:`has_children` for the price of reading the main thread's procfs ``children``
    file, an empty read when there is none: 0.3 us (1 in a worker's loop), where ``waitid``
    raises ``ChildProcessError`` then and costs 0.8 (2.5).

    That file lists the main thread's children only. It is enough while the main thread and
    threads known never to start a process (the output forwarder) are all the process has: a
    reward runs on the main thread, and the kernel gives every orphan a subreaper adopts to
    its main thread, as it does the children of a thread that ended. The caller says whether
    that holds (``settled``); when it does not, off Linux, or once the descriptor fails, this
    is :func:`has_children`.
    """

    def __init__(self, *, threads: int) -> None:
        """``threads``: how many the process has when settled (the main one included)."""
        self._fd = -1
        main = threading.main_thread().native_id
        if threading.current_thread() is not threading.main_thread() or main is None:
            return
        with contextlib.suppress(OSError):
            if thread_count() == threads:
                self._fd = os.open(f"/proc/self/task/{main}/children", os.O_RDONLY)

    def __call__(self, settled: bool) -> bool:
        if settled and self._fd >= 0:
            try:
                return bool(os.pread(self._fd, 1, 0))
            except OSError:  # a reward closed it: waitid from now on
                self._fd = -1
        return has_children()
