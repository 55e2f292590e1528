"""The :class:`Sandbox`: run model-written code under bubblewrap with resource limits."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ._bwrap import SANDBOX_UID, TMPFS, WORKDIR, bwrap_argv, find_bwrap, find_python
from ._config import Isolation, Limits, RunResult, RunStatus, SandboxUnavailable
from ._process import Finished, run_capped
from ._seccomp import seccomp_program

__all__ = ["Sandbox"]

_LAUNCHER = (Path(__file__).parent / "_launcher.py").read_text()
_LAUNCH_FAILED = 125
_LAUNCH_MARKER = b"rk-sandbox-launcher:"
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
_MEMORY_SIGNS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc")
_FORK_SIGNS = (b"BlockingIOError", b"Resource temporarily unavailable")
_DISK_SIGNS = (b"No space left on device", b"File too large", b"Disk quota exceeded")


class Sandbox:
    """Runs untrusted programs under bubblewrap: no network, read-only system, private tmpfs
    work dir, empty environment, limits on CPU, wall time, memory, processes and output.

    >>> box = Sandbox(limits=Limits(wall_seconds=5))  # doctest: +SKIP
    >>> box.run_python("print(6 * 7)").stdout  # doctest: +SKIP
    '42\\n'

    Without bubblewrap, construction fails with :class:`SandboxUnavailable` unless
    ``allow_weak_sandbox=True``, which runs with rlimits, an empty environment and a temporary
    work dir only: no network, filesystem or process isolation, and no process-count limit.
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        python: str | None = None,
        bwrap: str | None = None,
        allow_weak_sandbox: bool = False,
    ) -> None:
        self.limits = limits or Limits()
        self._bwrap = find_bwrap(bwrap)
        if self._bwrap is None and not allow_weak_sandbox:
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed, so model-written code cannot be "
                "sandboxed: install it (Debian/Ubuntu: apt-get install bubblewrap), or pass "
                "allow_weak_sandbox=True to accept a weaker sandbox (rlimits only)"
            )
        self.isolation: Isolation = "bubblewrap" if self._bwrap else "weak"
        # Root drops to an unprivileged uid before bubblewrap (see _bwrap.SANDBOX_UID).
        self._uid = SANDBOX_UID if self._bwrap and os.geteuid() == 0 else None
        try:
            self.python = find_python(python, self._uid)
        except FileNotFoundError as error:
            raise SandboxUnavailable(str(error)) from None

    def run_python(
        self,
        code: str,
        *,
        stdin: str | bytes = b"",
        files: Mapping[str, str | bytes] | None = None,
        args: Sequence[str] = (),
    ) -> RunResult:
        """Run ``code`` as ``main.py`` in the work dir (its files importable beside it)."""
        all_files = {**(files or {}), "main.py": code}
        return self.run(
            [self.python, "-E", "-s", "-B", "main.py", *args], stdin=stdin, files=all_files
        )

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | bytes = b"",
        files: Mapping[str, str | bytes] | None = None,
    ) -> RunResult:
        """Run ``argv`` (a program visible inside: system paths or work-dir files)."""
        data = stdin.encode() if isinstance(stdin, str) else bytes(stdin)
        contents = {name: _bytes(value) for name, value in (files or {}).items()}
        for name in contents:
            if "/" in name or name in ("", ".", ".."):
                raise ValueError(f"sandbox file names must be plain names, got {name!r}")
        rlimits = json.dumps(self.limits.rlimits(processes=self._bwrap is not None))
        launch = [self.python, "-I", "-S", "-c", _LAUNCHER, rlimits]
        if self._bwrap is None:
            finished = self._run_weak([*launch, "exec", "--", *argv], data, contents)
            return self._result(finished, None)
        launch += ["init", "--", *argv]
        program = seccomp_program()
        seccomp = {"seccomp": program} if program is not None else {}
        with (
            _open_files(contents) as fds,
            _open_files(seccomp) as filters,
            _status_pipe() as (status_read, status_write),
        ):
            command = bwrap_argv(
                self._bwrap,
                python=self.python,
                files=fds,
                disk_bytes=self.limits.max_file_mb * 1024 * 1024,
                status_fd=status_write,
                env={**_ENV, "HOME": WORKDIR, "TMPDIR": "/tmp"},
                seccomp_fd=filters.get("seccomp"),
            )
            finished = run_capped(
                command + launch,
                stdin=data,
                env={},
                cwd="/",
                wall_seconds=self.limits.wall_seconds,
                max_output_bytes=self.limits.max_output_bytes,
                user=self._uid,
                pass_fds=[*fds.values(), *filters.values(), status_write],
                memory_bytes=self.limits.memory_mb * 1024 * 1024,
                tmpfs=TMPFS,
            )
            status = _read_status(status_read)
        return self._result(finished, status)

    def _run_weak(self, launch: list[str], stdin: bytes, files: dict[str, bytes]) -> Finished:
        workdir = tempfile.mkdtemp(prefix="rk-weak-sandbox-")
        try:
            for name, content in files.items():
                Path(workdir, name).write_bytes(content)
            return run_capped(
                launch,
                stdin=stdin,
                env={**_ENV, "HOME": workdir, "TMPDIR": workdir},
                cwd=workdir,
                wall_seconds=self.limits.wall_seconds,
                max_output_bytes=self.limits.max_output_bytes,
                memory_bytes=self.limits.memory_mb * 1024 * 1024,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _result(self, finished: Finished, status: list[dict[str, int]] | None) -> RunResult:
        code = finished.returncode
        if status is not None:
            if not any("child-pid" in entry for entry in status) and not finished.timed_out:
                raise SandboxUnavailable(
                    "bubblewrap could not create the sandbox: "
                    + finished.stderr.decode(errors="replace").strip()
                    + " (user namespaces must be allowed: kernel.unprivileged_userns_clone=1, "
                    "no seccomp profile blocking unshare)"
                )
            exits = [entry["exit-code"] for entry in status if "exit-code" in entry]
            code = exits[-1] if exits else code
        if code == _LAUNCH_FAILED and finished.stderr.startswith(_LAUNCH_MARKER):
            raise SandboxUnavailable(finished.stderr.decode(errors="replace").strip())
        signal_name = _signal_of(code, bubblewrap=status is not None)
        run_status, reason = self._classify(finished, code, signal_name)
        return RunResult(
            status=run_status,
            exit_code=None if signal_name else code,
            stdout=finished.stdout.decode(errors="replace"),
            stderr=finished.stderr.decode(errors="replace"),
            duration_s=finished.duration_s,
            isolation=self.isolation,
            reason=reason,
            signal=signal_name,
            stdout_truncated=finished.stdout_truncated,
            stderr_truncated=finished.stderr_truncated,
        )

    def _classify(
        self, finished: Finished, code: int, signal_name: str | None
    ) -> tuple[RunStatus, str]:
        limits = self.limits
        if finished.memory_exceeded:
            return "memory_limit", (
                f"its processes and files held more than the run's {limits.memory_mb} MiB"
            )
        if finished.output_exceeded:
            return "output_limit", f"output passed the {limits.max_output_bytes}-byte cap"
        if finished.timed_out:
            return "timeout", f"ran past the {limits.wall_seconds:g}s wall-clock limit"
        # SIGXCPU at the soft CPU limit; SIGKILL at the hard one (1 s later) if the program
        # caught SIGXCPU. The host cannot see the sandbox's CPU time, only the elapsed time.
        cpu_hit = finished.duration_s >= limits.cpu_seconds
        if signal_name == "SIGXCPU" or (signal_name == "SIGKILL" and cpu_hit):
            return "cpu_limit", f"used its {limits.cpu_seconds:g}s of CPU time"
        if signal_name:
            return "killed", f"killed by {signal_name}"
        if code == 0:
            return "ok", "exited with code 0"
        tail = finished.stderr[-4096:]
        if any(sign in tail for sign in _MEMORY_SIGNS):
            return "memory_limit", f"could not allocate memory (limit {limits.memory_mb} MiB)"
        if any(sign in tail for sign in _FORK_SIGNS):
            return "process_limit", f"could not start a process (limit {limits.max_processes})"
        if any(sign in tail for sign in _DISK_SIGNS):
            return "disk_limit", (
                f"a write failed: files are limited to {limits.max_file_mb} MiB each and per "
                "tmpfs (work dir, /tmp, /dev/shm)"
            )
        return "error", f"exited with code {code}"


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _signal_of(code: int, *, bubblewrap: bool) -> str | None:
    """bubblewrap reports a signal as 128 + its number; subprocess as a negative code."""
    number = code - 128 if bubblewrap and code > 128 else -code if code < 0 else 0
    if not number:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@contextlib.contextmanager
def _open_files(contents: Mapping[str, bytes]) -> Iterator[dict[str, int]]:
    """One memfd per file, for bubblewrap to read (the work dir's files, the seccomp filter):
    no host temp files."""
    fds: dict[str, int] = {}
    try:
        for name, content in contents.items():
            fd = os.memfd_create(f"rk-{name}", 0)
            fds[name] = fd
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.lseek(fd, 0, os.SEEK_SET)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


@contextlib.contextmanager
def _status_pipe() -> Iterator[tuple[int, int]]:
    # Each end is closed exactly once: in a threaded server a second close could hit an fd
    # number another thread's sandbox has reused meanwhile.
    read, write = os.pipe()
    try:
        yield read, write
    finally:
        os.close(read)
        os.close(write)


def _read_status(fd: int) -> list[dict[str, int]]:
    # Non-blocking: bubblewrap has exited, whatever it wrote is there; never wait on the pipe.
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    decoder, text, entries = json.JSONDecoder(), b"".join(chunks).decode(), []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        entry, index = decoder.raw_decode(text, index)
        entries.append(entry)
    return entries
