"""What a sandbox run may use (:class:`Limits`) and what it reports (:class:`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._errors import ConfigurationError

__all__ = ["Isolation", "Limits", "RunResult", "RunStatus", "SandboxUnavailable"]

RunStatus = Literal[
    "ok",  # exit code 0
    "error",  # non-zero exit code (an exception, a failed assert, sys.exit(n))
    "timeout",  # wall-clock limit: killed by the host
    "cpu_limit",  # CPU-time limit: killed by the kernel (SIGXCPU / SIGKILL)
    "memory_limit",  # a process failed to allocate, or the run's total passed memory_mb
    "disk_limit",  # a write failed: a tmpfs is full or a file passed max_file_mb
    "process_limit",  # process-count limit: the program failed to fork
    "output_limit",  # stdout or stderr passed the cap: killed by the host
    "killed",  # ended by another signal (segfault, abort...)
]
Isolation = Literal["bubblewrap", "weak"]


class SandboxUnavailable(ConfigurationError):
    """No sandbox can run here (bubblewrap missing or unusable); the message says what to do."""

    code = "sandbox_unavailable"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run.

    ``memory_mb`` bounds each process (``RLIMIT_AS``) and the whole run: the resident memory of
    all its processes plus its tmpfs files (work dir, ``/tmp``, ``/dev/shm``), which a host-side
    watchdog checks every 50 ms. ``max_file_mb`` bounds each file and each tmpfs.

    >>> Limits(wall_seconds=5).cpu_seconds
    10.0
    """

    cpu_seconds: float = 10.0
    wall_seconds: float = 20.0
    memory_mb: int = 1024
    max_processes: int = 32
    max_output_bytes: int = 1_000_000
    max_file_mb: int = 64
    open_files: int = 256

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds", "memory_mb", "max_processes"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
        for name in ("max_output_bytes", "max_file_mb", "open_files"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")
        object.__setattr__(self, "cpu_seconds", float(self.cpu_seconds))
        object.__setattr__(self, "wall_seconds", float(self.wall_seconds))

    def rlimits(self, *, processes: bool) -> dict[str, tuple[int, int]]:
        """The rlimits the launcher sets (soft, hard); CPU gets a 1 s SIGXCPU-to-SIGKILL gap."""
        cpu = max(1, int(-(-self.cpu_seconds // 1)))  # rlimits are whole seconds: round up
        memory = self.memory_mb * 1024 * 1024
        limits = {
            "RLIMIT_CPU": (cpu, cpu + 1),
            "RLIMIT_AS": (memory, memory),
            "RLIMIT_FSIZE": (self.max_file_mb * 1024 * 1024,) * 2,
            "RLIMIT_NOFILE": (self.open_files, self.open_files),
            "RLIMIT_CORE": (0, 0),
        }
        if processes:
            limits["RLIMIT_NPROC"] = (self.max_processes, self.max_processes)
        return limits


@dataclass
class RunResult:
    """The outcome of one sandboxed run. ``status`` says how it ended, ``reason`` why."""

    status: RunStatus
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    isolation: Isolation
    reason: str = ""
    signal: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"
