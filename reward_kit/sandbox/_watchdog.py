"""How much memory a run holds: every process of its tree plus its tmpfs files.

``RLIMIT_AS`` bounds one process; a run may fork, and tmpfs files and memfds live in RAM
without being any process's resident memory. Without a cgroup to charge them to (this host
may have none we may write to), the host sums them from ``/proc`` while the run goes on:

* each process of the tree (found by parent pid from ``/proc/<pid>/stat``, since orphans are
  re-parented to the sandbox's own init, which is in the tree): its private anonymous memory
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


def _processes() -> dict[int, int]:
    """pid -> parent pid of every process on the host."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = data[data.rfind(b")") + 2 :].split()
        parents[int(name)] = int(fields[1])
    return parents


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in _processes().items():
        children.setdefault(parent, []).append(pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
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
    inside their root directory)."""
    pids = _tree(root)
    seen: set[tuple[int, int]] = set()
    total = sum(_resident(pid) + _memfds(pid, seen) for pid in pids)
    return total + _tmpfs_used(pids, mounts)
