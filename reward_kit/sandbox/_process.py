"""Start a process, feed its stdin, collect capped output under a wall-clock deadline.

No threads: one selector loop, so a soft deadline (SIGALRM in a worker's main thread) can
interrupt it anywhere, and the ``finally`` still kills and reaps the process group.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._watchdog import tree_memory

__all__ = ["Finished", "run_capped"]

_READ = 65536
# After the program's pipes close, how long the launcher process may take to exit.
_REAP_SECONDS = 5.0
# How often the memory watchdog sums the run's memory.
_WATCH_SECONDS = 0.05


@dataclass
class Finished:
    """What the host saw: the raw exit status plus why it stopped the process, if it did."""

    returncode: int
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool
    output_exceeded: bool
    duration_s: float
    memory_exceeded: bool = False


def run_capped(
    argv: Sequence[str],
    *,
    stdin: bytes,
    env: dict[str, str],
    cwd: str | None,
    wall_seconds: float,
    max_output_bytes: int,
    user: int | None = None,
    pass_fds: Sequence[int] = (),
    memory_bytes: int | None = None,
    tmpfs: Sequence[str] = (),
) -> Finished:
    """Run ``argv`` in its own session; kill the whole process group on deadline, output
    overflow, or when the tree's memory (see :func:`tree_memory`) passes ``memory_bytes``."""
    start = time.monotonic()
    deadline = start + wall_seconds
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,  # one process group to kill, apart from ours
        pass_fds=tuple(pass_fds),
        user=user,
        group=user,
        extra_groups=[] if user is not None else None,
    )
    outputs = {"stdout": bytearray(), "stderr": bytearray()}
    truncated = {"stdout": False, "stderr": False}
    timed_out = overflow = memory_exceeded = False
    next_watch = start
    try:
        if process.stdin is None or process.stdout is None or process.stderr is None:
            raise RuntimeError("the process has no pipes")  # cannot happen: all are PIPE
        with selectors.DefaultSelector() as selector:
            if stdin:
                os.set_blocking(process.stdin.fileno(), False)
                selector.register(process.stdin, selectors.EVENT_WRITE, "stdin")
            else:
                process.stdin.close()
            selector.register(process.stdout, selectors.EVENT_READ, "stdout")
            selector.register(process.stderr, selectors.EVENT_READ, "stderr")
            pending = memoryview(stdin)
            while selector.get_map() and not overflow:
                now = time.monotonic()
                if memory_bytes is not None and now >= next_watch:
                    next_watch = now + _WATCH_SECONDS
                    if tree_memory(process.pid, mounts=tmpfs) > memory_bytes:
                        memory_exceeded = True
                        break
                remaining = deadline - now
                if remaining <= 0:
                    timed_out = True
                    break
                wait = remaining if memory_bytes is None else min(remaining, _WATCH_SECONDS)
                for key, _ in selector.select(wait):
                    if key.data == "stdin":
                        try:
                            pending = pending[os.write(key.fd, pending[:_READ]) :]
                        except BrokenPipeError:
                            pending = pending[:0]  # the program stopped reading: fine
                        if not pending:
                            selector.unregister(key.fileobj)
                            process.stdin.close()
                        continue
                    chunk = os.read(key.fd, _READ)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffer = outputs[key.data]
                    room = max_output_bytes - len(buffer)
                    buffer += chunk[:room]
                    if len(chunk) > room:
                        truncated[key.data] = overflow = True
        if timed_out or overflow or memory_exceeded:
            _kill_group(process.pid)
        elif memory_bytes is not None:
            # The pipes closed; the run may still be there (it closed them): keep watching.
            reap_by = min(deadline, time.monotonic() + _REAP_SECONDS)
            while process.poll() is None and time.monotonic() < reap_by:
                if tree_memory(process.pid, mounts=tmpfs) > memory_bytes:
                    memory_exceeded = True
                    _kill_group(process.pid)
                    break
                time.sleep(_WATCH_SECONDS)
            if process.poll() is None and not memory_exceeded:
                timed_out = time.monotonic() >= deadline
                _kill_group(process.pid)  # it outstayed its pipes: not left unwatched
        returncode = _reap(process, timeout=_REAP_SECONDS)
    finally:
        if process.returncode is None:
            # Interrupted (soft deadline, KeyboardInterrupt) or stuck: leave nothing behind.
            _kill_group(process.pid)
            _reap(process, timeout=None)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
    return Finished(
        returncode=returncode,
        stdout=bytes(outputs["stdout"]),
        stderr=bytes(outputs["stderr"]),
        stdout_truncated=truncated["stdout"],
        stderr_truncated=truncated["stderr"],
        timed_out=timed_out,
        output_exceeded=overflow,
        duration_s=time.monotonic() - start,
        memory_exceeded=memory_exceeded,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(process: subprocess.Popen[bytes], *, timeout: float | None) -> int:
    """Wait for the process, killing its group if it outstays ``timeout``."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        return process.wait()
