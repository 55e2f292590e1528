"""The bubblewrap command line: what the sandbox sees, and as whom it runs.

Inside: a read-only /usr (plus the /bin, /lib... links or dirs), /etc/ld.so.cache only, fresh
/proc, a read-only /dev with the usual device nodes, sized tmpfs mounts for the work dir, /tmp
and /dev/shm (an unsized tmpfs would hold as much RAM as the code writes), no network, no
other host files, an empty environment. Every namespace is new, including a user namespace
with no capabilities, in which nested user namespaces are disabled. Our launcher, not
bubblewrap's init, is pid 1 (``--as-pid-1``: bubblewrap's init is dumpable, so model code could
ptrace it), and a seccomp filter (:mod:`._seccomp`) refuses ptrace and SysV IPC.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import sys
from pathlib import Path

__all__ = [
    "SANDBOX_UID",
    "TMPFS",
    "WORKDIR",
    "bwrap_argv",
    "find_bwrap",
    "find_python",
    "reachable",
]

WORKDIR = "/sandbox"
# The writable mounts, each a tmpfs of max_file_mb; the watchdog counts their use as memory.
TMPFS = (WORKDIR, "/tmp", "/dev/shm")
# Who runs the sandbox when the host process is root. Root inside a user namespace is still
# root on the host's files and is exempt from RLIMIT_NPROC, so root drops to this uid first.
SANDBOX_UID = 65534
_TOP_LEVEL = ("bin", "sbin", "lib", "lib64", "lib32", "libx32")


def find_bwrap(explicit: str | None = None) -> str | None:
    """The bubblewrap binary: ``explicit`` or ``bwrap`` on PATH (or its usual places)."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("bwrap") or next(
        (p for p in ("/usr/bin/bwrap", "/usr/local/bin/bwrap") if os.access(p, os.X_OK)), None
    )


def reachable(path: str, *, uid: int | None) -> bool:
    """Can ``uid`` (None: this process) open ``path`` for reading and execution?

    Checked by hand for another uid, since ``os.access`` answers for root.
    """
    if uid is None:
        return os.access(path, os.R_OK | os.X_OK)
    try:
        target = Path(path).resolve(strict=True)
    except OSError:
        return False
    for parent in reversed(target.parents):
        mode = parent.stat().st_mode
        if not (mode & stat.S_IXOTH or (parent.stat().st_uid == uid and mode & stat.S_IXUSR)):
            return False
    mode = target.stat().st_mode
    return bool(mode & stat.S_IROTH and mode & stat.S_IXOTH) or (
        target.stat().st_uid == uid and bool(mode & stat.S_IRUSR and mode & stat.S_IXUSR)
    )


@functools.lru_cache(maxsize=8)
def find_python(explicit: str | None, uid: int | None) -> str:
    """The interpreter to run inside: ``explicit``, this one's base interpreter, or python3.

    It must be readable by the sandbox's uid (a pyenv under /root is not, for uid 65534).
    """
    if explicit:
        candidates = [explicit]
    else:
        base = getattr(sys, "_base_executable", None) or sys.executable
        candidates = [os.path.realpath(base), "/usr/bin/python3", "/usr/local/bin/python3"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and reachable(candidate, uid=uid):
            return os.path.realpath(candidate)
    raise FileNotFoundError(
        "no Python interpreter the sandbox user can run (tried "
        + ", ".join(candidates)
        + "); install python3 system-wide or pass python=<path readable by all users>"
    )


def _system_binds(python: str) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LEVEL:
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    if os.path.exists("/etc/ld.so.cache"):
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    prefix = str(Path(python).parent.parent)
    if not python.startswith(("/usr/", "/bin/", "/lib")):
        # An interpreter outside /usr (e.g. /opt/python): its prefix, read-only, nothing more.
        args += ["--ro-bind", prefix, prefix]
    return args


def bwrap_argv(
    bwrap: str,
    *,
    python: str,
    files: dict[str, int],
    disk_bytes: int,
    status_fd: int,
    env: dict[str, str],
    seccomp_fd: int | None,
) -> list[str]:
    """The bwrap options up to ``--``; ``files`` maps a work-dir name to an fd to copy from,
    ``seccomp_fd`` reads the filter's BPF program."""
    args = [
        bwrap,
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup: no network, no host processes
        "--unshare-user",  # explicit, so --disable-userns is accepted
        "--disable-userns",
        "--as-pid-1",  # the launcher is the sandbox's init (see _launcher.py)
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into a terminal
        "--clearenv",
        "--hostname",
        "sandbox",
        "--json-status-fd",
        str(status_fd),
        *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
        *_system_binds(python),
        "--proc",
        "/proc",
        "--dev",  # a tmpfs with device nodes: made read-only below, /dev/shm its own tmpfs
        "/dev",
    ]
    for mount in TMPFS:
        args += ["--size", str(disk_bytes), "--tmpfs", mount]
    args += ["--remount-ro", "/dev"]
    for name, fd in files.items():
        args += ["--file", str(fd), f"{WORKDIR}/{name}"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--remount-ro", "/", "--chdir", WORKDIR, "--"]
    return args
