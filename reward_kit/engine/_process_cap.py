"""A cap on the processes one worker (with everything its rewards start) may run at once.

Two mechanisms, the first that works:

1. a cgroup of the ``pids`` controller (v2, or v1's ``pids`` hierarchy) created for the
   worker, with ``pids.max``: exact, and it holds against root. Needs a writable cgroup
   filesystem (root on a VM or a privileged container; Cloud Run and Lambda do not allow it);
2. ``RLIMIT_NPROC``: the kernel counts every process of the worker's user, so the limit is
   set to what that user already runs plus the cap. Root is exempt from it.

Neither available: a warning, once per worker, says the cap is not in force.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
from pathlib import Path

__all__ = ["CGROUP_PREFIX", "cgroup_dirs", "limit_processes", "remove_stale_cgroups"]

logger = logging.getLogger("reward_kit.worker")

CGROUP_PREFIX = "rk-worker-"
_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/pids"))


def limit_processes(count: int) -> str:
    """Cap this process's tree at ``count`` processes; returns the mechanism used."""
    if _limit_with_cgroup(count):
        return "cgroup"
    if os.geteuid() != 0 and _limit_with_rlimit(count):
        return "rlimit"
    logger.warning(
        "worker %d: --max-processes %d is not in force: no writable pids cgroup, and "
        "RLIMIT_NPROC does not bind root",
        os.getpid(),
        count,
    )
    return "none"


def _own_cgroup(root: Path) -> Path | None:
    """Where this process sits in the hierarchy mounted at ``root``, if it has pids."""
    v2 = root == _ROOTS[0] and (root / "cgroup.controllers").exists()
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            number, controllers, path = line.split(":", 2)
            if (v2 and number == "0") or (not v2 and "pids" in controllers.split(",")):
                return root / path.lstrip("/")
    return None


def remove_stale_cgroups(living: set[int]) -> None:
    """Remove the empty cgroups of workers that are gone (a worker cannot remove its own)."""
    for parent in cgroup_dirs():
        with contextlib.suppress(OSError):
            for group in parent.glob(f"{CGROUP_PREFIX}*"):
                pid = group.name[len(CGROUP_PREFIX) :]
                if pid.isdigit() and int(pid) not in living and not _alive(int(pid)):
                    with contextlib.suppress(OSError):
                        group.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cgroup_dirs() -> list[Path]:
    """Where the workers' cgroups are made (for the parent to remove the empty ones)."""
    found = []
    for root in _ROOTS:
        if (root / "cgroup.procs").exists():
            own = _own_cgroup(root)
            if own is not None:
                found.append(own)
    return found


def _limit_with_cgroup(count: int) -> bool:
    for parent in cgroup_dirs():
        group = parent / f"{CGROUP_PREFIX}{os.getpid()}"
        try:
            group.mkdir(exist_ok=True)
            # pids counts threads too: the worker's own ones are not the rewards' to spend.
            own_threads = len(os.listdir("/proc/self/task"))
            (group / "pids.max").write_text(str(count + own_threads))
            (group / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            continue
        return True
    return False


def _limit_with_rlimit(count: int) -> bool:
    uid = os.getuid()
    running = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    running += 1
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (running + count, running + count))
    except (ValueError, OSError):
        return False
    return True
