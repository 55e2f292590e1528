"""Memory and disk bounds of a whole run, not of one process: many processes, tmpfs files and
/dev cannot add up past the run's limits. Run for real under bubblewrap."""

from __future__ import annotations

import time

import pytest

from reward_kit.sandbox import Limits, Sandbox

from .conftest import require_bwrap

pytestmark = pytest.mark.integration


@pytest.fixture
def small() -> Sandbox:
    """memory_mb=200, tmpfs and files at 64 MiB: the numbers of the audit."""
    require_bwrap()
    return Sandbox(
        limits=Limits(
            cpu_seconds=5, wall_seconds=15, memory_mb=200, max_processes=16, max_file_mb=64
        )
    )


def test_many_processes_cannot_add_up_past_the_memory_limit(small: Sandbox) -> None:
    # Each child stays under the per-process RLIMIT_AS; together they hold 600 MiB.
    code = """
import os, time
for _ in range(4):
    if os.fork() == 0:
        block = b"x" * (150 << 20)
        time.sleep(30)
        os._exit(0)
time.sleep(30)
"""
    start = time.monotonic()
    run = small.run_python(code)
    assert run.status == "memory_limit", run
    assert "200 MiB" in run.reason
    assert time.monotonic() - start < 10  # the watchdog, not the wall clock, ended it


def test_dev_shm_is_a_small_tmpfs(small: Sandbox) -> None:
    code = """
for i in range(24):
    with open(f"/dev/shm/f{i}", "wb") as handle:
        handle.write(b"x" * (15 << 20))
    print("wrote", (i + 1) * 15, "MiB", flush=True)
"""
    run = small.run_python(code)
    assert run.status == "disk_limit", run
    assert "No space left on device" in run.stderr
    assert "wrote 75 MiB" not in run.stdout  # stopped at the 64 MiB tmpfs


def test_dev_is_read_only_but_its_devices_work(small: Sandbox) -> None:
    code = """
import os
for path in ("/dev/fill", "/dev/x/../y"):
    try:
        open(path, "wb").write(b"x" * (50 << 20))
        print(path, "WROTE")
    except OSError as error:
        print(path, "denied", error.strerror)
open("/dev/null", "wb").write(b"x")
print(len(open("/dev/urandom", "rb").read(8)))
"""
    run = small.run_python(code)
    assert run.status == "ok", run
    assert "WROTE" not in run.stdout
    assert "/dev/fill denied Read-only file system" in run.stdout
    assert run.stdout.endswith("8\n")


def test_filling_the_work_dir_hits_the_disk_limit(small: Sandbox) -> None:
    code = """
for i in range(40):
    with open(f"/sandbox/f{i}", "wb") as handle:
        handle.write(b"x" * (15 << 20))
"""
    run = small.run_python(code)
    assert run.status == "disk_limit", run
    assert "64 MiB" in run.reason


def test_one_big_file_hits_the_file_size_limit(small: Sandbox) -> None:
    run = small.run_python("open('/tmp/big', 'wb').write(b'x' * (100 << 20))")
    assert run.status == "disk_limit", run
    assert "File too large" in run.stderr


def test_tmpfs_files_count_towards_the_memory_limit() -> None:
    """Three tmpfs mounts of 64 MiB each are within their own sizes; together with the
    process they pass a 150 MiB run limit, which counts tmpfs files like memory."""
    require_bwrap()
    box = Sandbox(limits=Limits(cpu_seconds=5, wall_seconds=15, memory_mb=150, max_file_mb=64))
    code = """
import time
for directory in ("/sandbox", "/tmp", "/dev/shm"):
    with open(f"{directory}/f", "wb") as handle:
        handle.write(b"x" * (60 << 20))
time.sleep(30)
"""
    run = box.run_python(code)
    assert run.status == "memory_limit", run
