"""Every attack from the issue, run for real under bubblewrap: each must be contained and
reported with a clear status."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil
import pytest

from reward_kit.sandbox import Sandbox
from reward_kit.sandbox._bwrap import SANDBOX_UID

pytestmark = pytest.mark.integration


def _no_process_left() -> None:
    """Nothing of the run survives it (the sandbox uid owns no process when we are root)."""
    if os.geteuid() != 0:
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        left = [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"].real == SANDBOX_UID]
        if not left:
            return
        time.sleep(0.05)
    pytest.fail(f"sandbox processes left running: {left}")


def test_socket_to_loopback_and_outside_is_blocked(sandbox: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = f"""
import socket
for host, port in (("127.0.0.1", {port}), ("192.0.2.1", 80)):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        print(host, "CONNECTED")
    except OSError as error:
        print(host, "blocked", error.errno)
"""
        run = sandbox.run_python(code)
        with pytest.raises(BlockingIOError):
            listener.accept()  # the host's server saw no connection
    assert run.status == "ok", run
    assert "CONNECTED" not in run.stdout
    assert "127.0.0.1 blocked 111" in run.stdout  # refused: loopback of its own net namespace
    assert "192.0.2.1 blocked 101" in run.stdout  # unreachable: no route out at all


def test_host_files_and_environment_are_invisible(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("FILE-SECRET-123")
    secret_file.chmod(0o644)
    monkeypatch.setenv("RK_TEST_SERVER_SECRET", "ENV-SECRET-456")
    code = f"""
import os
print(sorted(os.environ))
for path in ({str(secret_file)!r}, "/etc/passwd", "/etc/shadow", "/root", {os.getcwd()!r},
             "/proc/1/environ", "/proc/self/environ"):
    try:
        if os.path.isdir(path):
            print(path, "LISTED", os.listdir(path))
        else:
            print(path, "READ", open(path, "rb").read())
    except OSError as error:
        print(path, "denied", type(error).__name__)
"""
    run = sandbox.run_python(code)
    assert run.status == "ok", run
    assert "FILE-SECRET-123" not in run.stdout
    assert "ENV-SECRET-456" not in run.stdout
    assert "RK_TEST_SERVER_SECRET" not in run.stdout
    assert f"{secret_file} denied FileNotFoundError" in run.stdout
    assert "/etc/passwd denied" in run.stdout
    assert f"{os.getcwd()} denied" in run.stdout


def test_writes_outside_the_work_dir_fail_and_leave_the_host_untouched(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    target = tmp_path / "planted.txt"
    code = f"""
for path in ("/usr/planted", "/etc/planted", "/planted", {str(target)!r}, "/sandbox/ok.txt"):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        print(path, "WROTE")
    except OSError as error:
        print(path, "denied", type(error).__name__)
"""
    run = sandbox.run_python(code)
    assert run.status == "ok", run
    assert "/sandbox/ok.txt WROTE" in run.stdout  # the private work dir is writable
    assert run.stdout.count("WROTE") == 1
    assert not target.exists()
    assert not Path("/usr/planted").exists()


def test_fork_bomb_is_capped_and_cleaned_up(sandbox: Sandbox) -> None:
    code = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    start = time.monotonic()
    run = sandbox.run_python(code)
    assert time.monotonic() - start < sandbox.limits.wall_seconds + 3
    assert run.status in ("cpu_limit", "timeout"), run
    _no_process_left()


def test_fork_limit_is_per_sandbox_and_reported(sandbox: Sandbox) -> None:
    code = """
import os, time
children = 0
try:
    for _ in range(100):
        if os.fork() == 0:
            time.sleep(30)
        children += 1
except OSError as error:
    print("stopped after", children, "children:", error)
    raise
"""
    run = sandbox.run_python(code)
    assert run.status == "process_limit", run
    stopped = int(run.stdout.split("stopped after ")[1].split()[0])
    assert stopped < sandbox.limits.max_processes
    _no_process_left()


def test_memory_bomb_hits_the_memory_limit(sandbox: Sandbox) -> None:
    run = sandbox.run_python("blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))")
    assert run.status == "memory_limit", run
    assert "MemoryError" in run.stderr


def test_infinite_loop_hits_the_cpu_limit(sandbox: Sandbox) -> None:
    run = sandbox.run_python("while True:\n    pass")
    assert run.status == "cpu_limit", run
    assert run.signal in ("SIGXCPU", "SIGKILL")
    _no_process_left()


def test_sleeping_forever_hits_the_wall_clock_limit(sandbox: Sandbox) -> None:
    start = time.monotonic()
    run = sandbox.run_python("import time\ntime.sleep(3600)")
    assert run.status == "timeout", run
    assert time.monotonic() - start < sandbox.limits.wall_seconds + 2
    _no_process_left()


def test_gigabytes_of_output_are_cut_at_the_cap(sandbox: Sandbox) -> None:
    start = time.monotonic()
    run = sandbox.run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
    assert run.status == "output_limit", run
    assert run.stdout_truncated
    assert len(run.stdout) == sandbox.limits.max_output_bytes
    assert time.monotonic() - start < 3
    _no_process_left()


def test_killing_the_parent_cannot_reach_the_host(sandbox: Sandbox) -> None:
    host = os.getpid()
    code = f"""
import os, signal
print("ppid", os.getppid())
for pid in (os.getppid(), 1, {host}, -1):
    try:
        os.kill(pid, signal.SIGKILL)
        print(pid, "sent")
    except OSError as error:
        print(pid, "denied", type(error).__name__)
"""
    run = sandbox.run_python(code)
    assert psutil.pid_exists(host)
    assert f"{host} denied ProcessLookupError" in run.stdout
    # kill(-1) may end the program itself; either way the run is reported, the host lives.
    assert run.status in ("ok", "killed"), run


def test_proc_shows_only_the_sandbox(sandbox: Sandbox) -> None:
    host = os.getpid()
    code = f"""
import os
pids = [p for p in os.listdir("/proc") if p.isdigit()]
print("pids", len(pids))
for path in ("/proc/{host}/environ", "/proc/{host}/root/etc/hostname"):
    try:
        print(path, "READ", open(path, "rb").read()[:50])
    except OSError as error:
        print(path, "denied", type(error).__name__)
print("root", sorted(os.listdir("/proc/self/root")))
for path in ("/proc/sysrq-trigger", "/proc/sys/kernel/hostname"):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        print(path, "WROTE")
    except OSError as error:
        print(path, "denied", type(error).__name__)
"""
    run = sandbox.run_python(code)
    assert run.status == "ok", run
    assert int(run.stdout.split("pids ")[1].split()[0]) <= 3  # the sandbox's init and the program
    assert "READ" not in run.stdout
    assert "WROTE" not in run.stdout
    assert "'sandbox'" in run.stdout  # /proc/self/root is the sandbox's own root
    assert "'root'" not in run.stdout.split("root [")[1]
