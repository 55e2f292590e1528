"""Processes that dead workers left behind, and how the server finds and kills them.

A worker is a child subreaper, so what a reward starts stays in its tree while it lives (see
_containment.py). When a worker is killed at its hard deadline or dies, its descendants are
adopted by the next subreaper up: the pool's fork server (_forkserver.py). Any child of the
fork server that is not a worker is therefore an orphan, and :func:`sweep_orphans` kills it
with everything below it.
"""

from __future__ import annotations

import logging
import os
import sys

from ._process_cap import remove_stale_cgroups
from ._process_tree import descendants, kill_trees

__all__ = ["NEWBORN_SECONDS", "sweep_orphans"]

logger = logging.getLogger("reward_kit.engine")

# A fork-server child not known as a worker is an orphan once it is this old (a worker being
# born is briefly unknown to pebble; it has not joined its own process group yet either).
NEWBORN_SECONDS = 2.0


def sweep_orphans(*, workers: set[int], spare_newborns: bool = True) -> list[int]:
    """Kill the fork server's children that are not ``workers``: processes that a killed or
    crashed worker left behind, adopted by the fork server (a subreaper). Returns the roots.

    A worker being born is briefly unknown to pebble: with ``spare_newborns``, a young child
    that leads its own process group (as a worker does from its first instant) is left for a
    later sweep."""
    server = _forkserver_pid()
    if server is None:
        return []
    try:
        server_group = os.getpgid(server)
    except OSError:
        return []
    orphans = [
        pid
        for pid in descendants(server, skip=frozenset(workers))
        if pid not in workers and _is_orphan(pid, server, server_group, spare_newborns)
    ]
    if orphans:
        logger.warning("killing %d process(es) left behind by dead workers", len(orphans))
        kill_trees(orphans)
    remove_stale_cgroups(workers)
    return orphans


def _is_orphan(pid: int, server: int, server_group: int, spare_newborns: bool) -> bool:
    try:
        if _parent_of(pid) != server:
            return False  # below another orphan: killed with its tree
        if not spare_newborns:
            return True
        group = os.getpgid(pid)
        if group not in (pid, server_group):
            return True  # still in a dead worker's process group
        return _age(pid) > NEWBORN_SECONDS
    except OSError:
        return False


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as file:
        return int(file.read().rsplit(b")", 1)[1].split()[1])


def _age(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as file:
        started = int(file.read().rsplit(b")", 1)[1].split()[19])
    with open("/proc/uptime", "rb") as file:
        uptime = float(file.read().split()[0])
    return uptime - started / os.sysconf("SC_CLK_TCK")


def _forkserver_pid() -> int | None:
    """The running fork server's pid (multiprocessing internals; None if they change)."""
    if not sys.platform.startswith("linux"):
        return None
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    return pid if isinstance(pid, int) else None
