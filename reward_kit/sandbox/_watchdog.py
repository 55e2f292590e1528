"""How much memory a run holds: every process of its tree plus its tmpfs files.

``RLIMIT_AS`` bounds one process; a run may fork, and tmpfs files and memfds live in RAM
without being any process's resident memory. Without a cgroup to charge them to (this host
may have none we may write to), the host sums them from ``/proc`` while the run goes on:

* each process of the tree (walked down from the root through
  ``/proc/<pid>/task/*/children``, or, on kernels without that file, by parent pid from every
  ``/proc/<pid>/stat``; orphans are re-parented to the sandbox's own init, which is in the
  tree): its private anonymous memory
  and its shared memory (``RssAnon`` + ``RssShmem``); file-backed pages are the system's
  read-only files and are not counted;
* memfds held open by those processes (``/proc/<pid>/fd``), each file once;
* the used bytes of the run's tmpfs mounts, seen through ``/proc/<pid>/root``.

Pages shared copy-on-write after ``fork`` count once per process: the sum errs high.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

__all__ = ["tree_memory"]


_PROC = "/proc"


def _children(pid: int) -> list[int] | None:
    """Children of ``pid`` from ``/proc/<pid>/task/*/children``; None when the kernel has no
    such file (built without CONFIG_PROC_CHILDREN)."""
    try:
        tasks = os.listdir(f"{_PROC}/{pid}/task")
    except OSError:
        return []  # ended meanwhile
    children: list[int] = []
    for task in tasks:
        try:
            with open(f"{_PROC}/{pid}/task/{task}/children", "rb") as handle:
                children.extend(int(child) for child in handle.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"{_PROC}/{pid}/task/{task}"):
                continue  # the thread ended meanwhile
            return None
        except OSError:
            continue
    return children


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process on the host: the fallback without ``children``."""
    parents = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            with open(f"{_PROC}/{name}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = data[data.rfind(b")") + 2 :].split()
        parents[int(name)] = int(fields[1])
    return parents


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, walked from ``root`` down: only this run's processes are
    read, not every process of the host (every 50 ms per running sandbox)."""
    tree, pending = [], [root]
    by_parent: dict[int, list[int]] | None = None
    while pending:
        pid = pending.pop()
        tree.append(pid)
        children = _children(pid) if by_parent is None else None
        if children is None:
            if by_parent is None:
                by_parent = {}
                for child, parent in _parents().items():
                    by_parent.setdefault(parent, []).append(child)
            children = by_parent.get(pid, [])
        pending.extend(child for child in children if child not in tree)
    return tree


def _resident(pid: int) -> int:
    total = 0
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("RssAnon:", "RssShmem:")):
                total += int(line.split()[1]) * 1024
    return total


def _memfds(pid: int, seen: set[tuple[int, int]]) -> int:
    total = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            path = f"/proc/{pid}/fd/{fd}"
            with contextlib.suppress(OSError):
                if not os.readlink(path).startswith("/memfd:"):
                    continue
                info = os.stat(path)
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_blocks * 512
    return total


def _tmpfs_used(pids: list[int], mounts: Iterable[str]) -> int:
    mounts = tuple(mounts)
    if not mounts:
        return 0
    ours = os.readlink("/proc/self/ns/mnt")
    # A process in the sandbox's mount namespace (bubblewrap's outer process is in ours).
    for pid in reversed(pids):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/ns/mnt") == ours:
                continue
            total = 0
            for mount in mounts:
                stats = os.statvfs(f"/proc/{pid}/root{mount}")
                total += (stats.f_blocks - stats.f_bfree) * stats.f_frsize
            return total
    return 0


def tree_memory(root: int, *, mounts: Iterable[str] = ()) -> int:
    """Bytes held by ``root`` and its descendants, plus the used bytes of ``mounts`` (paths
    inside their root directory). 0 without ``/proc`` (not Linux: only the per-process
    ``RLIMIT_AS`` bounds the run there)."""
    if not os.path.isdir(f"{_PROC}/self"):
        return 0
    pids = _tree(root)
    seen: set[tuple[int, int]] = set()
    total = sum(_resident(pid) + _memfds(pid, seen) for pid in pids)
    return total + _tmpfs_used(pids, mounts)
