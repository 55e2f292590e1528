"""Issue 11, item 10 and a low item, for real under bubblewrap: shared memory cannot hold more
than a run's memory limit (SysV segments, message queues and semaphores are refused; POSIX
shared memory is a tmpfs file the watchdog counts), and no process of the sandbox's own
(its pid 1) or of the test harness can be traced or read by model code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reward_kit.sandbox import Limits, Sandbox

from ..conftest import require_integration, rk_serve

pytestmark = pytest.mark.integration

CODE = "reward_kit.rewards:code_execution_reward"

# SysV shared memory: create, fill and detach 32 MiB segments. Detached, they are no
# process's memory: before the fix one run held 1.6 GB under a 256 MB limit.
SYSV_SHM = """
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
held = 0
for _ in range(20):
    shmid = libc.shmget(0, 32 << 20, 0o1600)
    if shmid < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    address = libc.shmat(shmid, None, 0)
    ctypes.memset(address, 1, 32 << 20)
    libc.shmdt(ctypes.c_void_p(address))
    held += 32
    print("held", held, "MiB", flush=True)
time.sleep(30)
"""

# Message queues and semaphore sets: kernel memory of the same IPC namespace.
SYSV_MSG_SEM = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, call in (("msgget", lambda: libc.msgget(0, 0o1600)),
                   ("semget", lambda: libc.semget(0, 32000, 0o1600))):
    if call() < 0:
        error = ctypes.get_errno()
        print(name, "refused", os.strerror(error), flush=True)
    else:
        print(name, "CREATED", flush=True)
"""

# POSIX shared memory (multiprocessing.shared_memory): files on the /dev/shm tmpfs, filled
# and unmapped, so no process holds them as resident memory.
POSIX_SHM = """
import time
from multiprocessing import shared_memory
kept = []
for i in range(6):
    block = shared_memory.SharedMemory(name=f"rk{i}", create=True, size=40 << 20)
    block.buf[:] = b"x" * (40 << 20)
    block.close()
    kept.append(block)
    print("held", (i + 1) * 40, "MiB", flush=True)
time.sleep(30)
"""


@pytest.fixture
def box() -> Sandbox:
    """100 MiB per run; tmpfs mounts of 300 MiB, so only the memory limit can stop a run."""
    require_integration("bwrap")
    return Sandbox(
        limits=Limits(
            cpu_seconds=10, wall_seconds=20, memory_mb=100, max_processes=16, max_file_mb=300
        )
    )


def test_sysv_shared_memory_cannot_pass_the_memory_limit(box: Sandbox) -> None:
    run = box.run_python(SYSV_SHM)
    assert run.status == "memory_limit", run
    assert "held 128 MiB" not in run.stdout, run.stdout
    assert "Cannot allocate memory" in run.stderr


def test_sysv_message_queues_and_semaphores_are_refused(box: Sandbox) -> None:
    run = box.run_python(SYSV_MSG_SEM)
    assert run.status == "ok", run
    assert "msgget refused Cannot allocate memory" in run.stdout, run.stdout
    assert "semget refused Cannot allocate memory" in run.stdout, run.stdout


def test_posix_shared_memory_counts_towards_the_memory_limit(box: Sandbox) -> None:
    run = box.run_python(POSIX_SHM)
    assert run.status == "memory_limit", run
    assert "held 240 MiB" not in run.stdout, run.stdout


# Everything model code could use to take over another process, tried on each pid it did
# not start itself: a list of what worked.
REACH = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def denied():
    return ctypes.get_errno() in (1, 13)  # EPERM, EACCES

def ptrace(pid, request):
    if libc.ptrace(request, pid, 0, 0) == 0:
        libc.ptrace(17, pid, 0, 0)  # PTRACE_DETACH
        return True
    return not denied()

def opens(path, flags):
    try:
        os.close(os.open(path, flags))
        return True
    except PermissionError:
        return False
    except OSError:
        return True  # reached the file, failed for another reason

def lists(path):
    try:
        os.listdir(path)
        return True
    except PermissionError:
        return False

def vm_read(pid):
    buffer = ctypes.create_string_buffer(8)
    local = (ctypes.c_void_p * 2)(ctypes.cast(buffer, ctypes.c_void_p), 8)
    remote = (ctypes.c_void_p * 2)(0x10000, 8)
    return libc.process_vm_readv(pid, local, 1, remote, 1, 0) >= 0 or not denied()

def steal_fd(pid):
    pidfd = os.pidfd_open(pid)
    try:
        return libc.syscall(438, pidfd, 1, 0) >= 0 or not denied()  # pidfd_getfd(pidfd, 1)
    finally:
        os.close(pidfd)

def reach(mine=()):
    mine = {os.getpid(), *mine}
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        pid = int(name)
        attempts = {
            "ptrace attach": lambda: ptrace(pid, 16),
            "ptrace seize": lambda: ptrace(pid, 0x4206),
            "read mem": lambda: opens(f"/proc/{pid}/mem", os.O_RDONLY),
            "write mem": lambda: opens(f"/proc/{pid}/mem", os.O_RDWR),
            "environ": lambda: opens(f"/proc/{pid}/environ", os.O_RDONLY),
            "fd list": lambda: lists(f"/proc/{pid}/fd"),
            "process_vm_readv": lambda: vm_read(pid),
            "pidfd_getfd": lambda: steal_fd(pid),
        }
        found += [f"{pid} {what}" for what, attempt in attempts.items() if attempt()]
    return found
"""


def test_the_sandboxs_pid_1_cannot_be_traced_or_read(box: Sandbox) -> None:
    run = box.run_python(REACH + "\nprint(os.getpid(), reach())\n")
    assert run.status == "ok", run
    assert run.stdout.strip() == "2 []", run.stdout  # the program is pid 2; pid 1 is out of reach


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    require_integration("bwrap")
    env = {"RK_SANDBOX_MAX_MEMORY_MB": "150"}
    with rk_serve(CODE, "--workers", "1", env=env) as url:
        yield url


def evaluate(url: str, code: str, truth: Any) -> dict[str, Any]:
    body = {"messages": [{"role": "assistant", "content": code}], "ground_truth": truth}
    response = httpx.post(f"{url}/evaluate/code_execution_reward", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_no_process_of_the_test_harness_can_be_traced_or_read(server: str) -> None:
    """From inside a call (the harness, the verdict process waiting for the answer, and pid 1
    all alive): nothing but the model's own processes is reachable."""
    code = REACH + "\ndef others():\n    return reach(mine=(os.getppid(),))\n"
    result = evaluate(server, code, {"tests": ["found = others()\nassert found == [], found"]})
    assert result["score"] == 1.0, result


def test_sysv_shared_memory_over_the_service_is_a_memory_limit(server: str) -> None:
    truth = {"test_cases": [{"input": "", "output": "never"}]}
    result = evaluate(server, SYSV_SHM, truth)
    assert result["score"] == 0.0, result
    reason = result["metrics"]["test_0"]["reason"]
    assert reason.startswith("memory_limit"), reason
