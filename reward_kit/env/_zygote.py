"""The sessions' fork server: ``python -m reward_kit.env._zygote FD TARGETS_JSON``.

It imports the targets once, then forks one process per session on request, so a session
starts without paying for the imports. It hands the server the session's socket and a pidfd
(a handle that names that process even after its pid is reused) over its control socket.
Sessions are child subreapers, and so is this process: what a tool starts and detaches stays
in this tree, and is killed here when its session dies. When the server dies, even SIGKILLed,
the kernel sends this process SIGTERM (PDEATHSIG); it then kills everything below it and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
from typing import Any

from ._child import die_with_parent, make_subreaper, run_session
from ._discovery import find_environments

__all__: list[str] = []

_SWEEP_SECONDS = 0.5


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> None:
    # SIGTERM, not SIGKILL, when the server dies (even SIGKILLed): this process must live long
    # enough to kill every session and everything the sessions' tools started.
    signal.signal(signal.SIGTERM, _exit)
    die_with_parent(signal.SIGTERM)
    # Ctrl-C reaches the whole foreground group: the server decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    make_subreaper()
    control = socket.socket(fileno=int(argv[0]))
    try:
        classes = find_environments(json.loads(argv[1]))
    except Exception as error:
        control.send(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
        return
    control.send(json.dumps({"ready": sorted(classes)}).encode())
    sessions: set[int] = set()
    try:
        while True:
            readable, _, _ = select.select([control], [], [], _SWEEP_SECONDS)
            _reap(sessions)
            if not readable:
                continue
            data = control.recv(65536)
            if not data:
                break  # the server closed its end, or died
            request = json.loads(data)
            env = classes.get(request.get("env", ""))
            if env is None:
                control.send(json.dumps({"error": f"unknown environment {request!r}"}).encode())
                continue
            _spawn(control, env, request.get("memory_limit_mb"), sessions)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _kill_everything_below()


def _spawn(
    control: socket.socket, env: Any, memory_limit_mb: int | None, sessions: set[int]
) -> None:
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            control.close()
            ours.close()
            run_session(theirs, env, memory_limit_mb)
        finally:
            os._exit(1)
    theirs.close()
    sessions.add(pid)
    fds = [ours.fileno()]
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(pid)
        fds.append(pidfd)
    try:
        socket.send_fds(control, [json.dumps({"pid": pid}).encode()], fds)
    finally:
        ours.close()
        if pidfd is not None:
            os.close(pidfd)


def _reap(sessions: set[int]) -> None:
    """Collect exited children; kill the orphans that dead sessions left to this process."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        sessions.discard(pid)
    for pid in _children():
        if pid not in sessions:
            _kill(pid)


def _children(pid: int | str = "self") -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(pid) for pid in f.read().split()]
    return found


def _kill_everything_below() -> None:
    """SIGKILL every descendant; repeated, as one may fork while the tree is walked."""
    for _ in range(10):
        found, todo = [], _children()
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += _children(pid)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1:])
