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
    run = _Run(process, wall_seconds, max_output_bytes, memory_bytes, tuple(tmpfs))
    try:
        run.pump(stdin)
        run.settle()
        returncode = _reap(process, timeout=_REAP_SECONDS)
    finally:
        run.clean_up()
    return run.finished(returncode)


class _Run:
    """One capped run: its pipes, what it wrote, and why (if at all) it was stopped."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        wall_seconds: float,
        max_output_bytes: int,
        memory_bytes: int | None,
        tmpfs: tuple[str, ...],
    ) -> None:
        self.process = process
        self.start = time.monotonic()
        self.deadline = self.start + wall_seconds
        self.max_output_bytes = max_output_bytes
        self.memory_bytes = memory_bytes
        self.tmpfs = tmpfs
        self.outputs = {"stdout": bytearray(), "stderr": bytearray()}
        self.truncated = {"stdout": False, "stderr": False}
        self.timed_out = self.overflow = self.memory_exceeded = False
        self._next_watch = self.start
        self._pending = memoryview(b"")

    def pump(self, stdin: bytes) -> None:
        """Feed stdin and collect output until the pipes close or a limit is hit."""
        process = self.process
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
            self._pending = memoryview(stdin)
            while selector.get_map() and not self.overflow:
                wait = self._wait_or_stop()
                if wait is None:
                    break
                for key, _ in selector.select(wait):
                    self._ready(selector, key)

    def _wait_or_stop(self) -> float | None:
        """How long the next select may wait, or None once a limit stopped the run."""
        now = time.monotonic()
        if self.memory_bytes is not None and now >= self._next_watch:
            self._next_watch = now + _WATCH_SECONDS
            if self._over_memory():
                self.memory_exceeded = True
                return None
        remaining = self.deadline - now
        if remaining <= 0:
            self.timed_out = True
            return None
        return remaining if self.memory_bytes is None else min(remaining, _WATCH_SECONDS)

    def _ready(self, selector: selectors.BaseSelector, key: selectors.SelectorKey) -> None:
        if key.data == "stdin":
            try:
                self._pending = self._pending[os.write(key.fd, self._pending[:_READ]) :]
            except BrokenPipeError:
                self._pending = self._pending[:0]  # the program stopped reading: fine
            if not self._pending:
                selector.unregister(key.fileobj)
                if self.process.stdin is not None:
                    self.process.stdin.close()
            return
        chunk = os.read(key.fd, _READ)
        if not chunk:
            selector.unregister(key.fileobj)
            return
        buffer = self.outputs[key.data]
        room = self.max_output_bytes - len(buffer)
        buffer += chunk[:room]
        if len(chunk) > room:
            self.truncated[key.data] = self.overflow = True

    def settle(self) -> None:
        """After the pipes: kill a run that hit a limit; watch one that outlives its pipes."""
        if self.timed_out or self.overflow or self.memory_exceeded:
            _kill_group(self.process.pid)
            return
        if self.memory_bytes is None:
            return
        # The pipes closed; the run may still be there (it closed them): keep watching.
        reap_by = min(self.deadline, time.monotonic() + _REAP_SECONDS)
        while self.process.poll() is None and time.monotonic() < reap_by:
            if self._over_memory():
                self.memory_exceeded = True
                _kill_group(self.process.pid)
                return
            time.sleep(_WATCH_SECONDS)
        if self.process.poll() is None:
            self.timed_out = time.monotonic() >= self.deadline
            _kill_group(self.process.pid)  # it outstayed its pipes: not left unwatched

    def _over_memory(self) -> bool:
        assert self.memory_bytes is not None
        return tree_memory(self.process.pid, mounts=self.tmpfs) > self.memory_bytes

    def clean_up(self) -> None:
        process = self.process
        if process.returncode is None:
            # Interrupted (soft deadline, KeyboardInterrupt) or stuck: leave nothing behind.
            _kill_group(process.pid)
            _reap(process, timeout=None)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def finished(self, returncode: int) -> Finished:
        return Finished(
            returncode=returncode,
            stdout=bytes(self.outputs["stdout"]),
            stderr=bytes(self.outputs["stderr"]),
            stdout_truncated=self.truncated["stdout"],
            stderr_truncated=self.truncated["stderr"],
            timed_out=self.timed_out,
            output_exceeded=self.overflow,
            duration_s=time.monotonic() - self.start,
            memory_exceeded=self.memory_exceeded,
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
