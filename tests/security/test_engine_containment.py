"""Issue 11: what a reward starts, leaks or changes stays inside its item or its worker.

Processes a reward starts die when its item ends, and with a worker killed at its hard
deadline; a per-worker process cap; a worker that ran out of memory, left threads behind or
served its quota is replaced; cwd, os.environ and sys.path changes do not reach the next item;
server secrets are not in the workers' environment; what a reward prints is capped and escaped.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from ..conftest import FIXTURES, free_port, metric, rk_serve, wait_for_health

REWARDS = str(FIXTURES / "engine_hostile.py")
MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "4"}]


def _marker() -> str:
    """A unique `sleep` argument (seconds) to find the processes of one test by."""
    return f"1000.{uuid.uuid4().int % 10**12:012d}"


def _tagged(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["cmdline"] == ["sleep", marker] and process.info["status"] != "zombie":
            found.append(process)
    return found


def _wait_until_none(marker: str, seconds: float = 10) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while (left := _tagged(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _post(url: str, function: str, timeout: float = 30, **fields: object) -> httpx.Response:
    body = {"messages": MESSAGES, **fields}
    return httpx.post(f"{url}/evaluate/{function}", json=body, timeout=timeout)


def test_processes_a_reward_starts_die_when_its_item_ends() -> None:
    marker = _marker()
    with rk_serve(REWARDS, "--workers", "1") as url:
        response = _post(url, "spawns", marker=marker)
        assert response.status_code == 200, response.text
        # A Popen child and a double-forked setsid daemon: both gone once the item is done.
        assert _wait_until_none(marker, 5) == []
        assert _post(url, "ok").json()["score"] == 1.0


@pytest.mark.parametrize("keep_thread", [False, True])
def test_processes_started_by_other_threads_die_when_their_item_ends(keep_thread: bool) -> None:
    """The worker reads its main thread's children after each item (issue 17): a thread that
    ended leaves its child to the main thread; a thread left running makes the worker look
    at every thread's children, and retire."""
    marker = _marker()
    with rk_serve(REWARDS, "--workers", "1") as url:
        response = _post(url, "spawns_from_thread", marker=marker, keep_thread=keep_thread)
        assert response.status_code == 200, response.text
        assert _wait_until_none(marker, 5) == []
        assert _post(url, "ok").json()["score"] == 1.0


def test_a_reward_that_closes_the_childrens_descriptor_still_has_its_processes_killed() -> None:
    marker = _marker()
    with rk_serve(REWARDS, "--workers", "1") as url:
        for _ in range(2):  # the second item runs with the descriptor gone
            response = _post(url, "closes_child_check", marker=marker)
            assert response.status_code == 200, response.text
            assert _wait_until_none(marker, 5) == []


def test_a_reward_that_turns_the_timer_off_does_not_cost_later_items_their_deadline() -> None:
    """Each item sets the soft deadline's timer again (issue 17 dropped the disarm after each
    item, not the arming): an item after one that turned the timer off is still interrupted
    in Python, and its worker lives on."""
    with rk_serve(REWARDS, "--workers", "1") as url:
        worker = _post(url, "timer_off").json()["reason"]
        response = _post(url, "spins")
        assert response.status_code == 504, response.text
        assert "deadline" in response.json()["error"]["message"]
        assert _post(url, "pid").json()["reason"] == worker  # interrupted, not killed


def test_processes_of_a_worker_killed_at_its_deadline_die_with_it() -> None:
    marker = _marker()
    with rk_serve(REWARDS, "--workers", "1") as url:
        response = _post(url, "spawns", marker=marker, hang=True)
        assert response.status_code == 504, response.text
        assert _wait_until_none(marker, 10) == []
        assert _post(url, "ok").json()["score"] == 1.0


def test_nothing_outlives_the_server() -> None:
    marker = _marker()
    port = free_port()
    command = [str(Path(sys.executable).parent / "rk-serve"), REWARDS, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, server)
        # The worker is still running (and spawning) when the server is stopped.
        with contextlib.suppress(httpx.ReadTimeout):
            _post(url, "spawns", timeout=1, marker=marker, hang=True)
        assert _tagged(marker), "the reward did not start its processes"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert _wait_until_none(marker, 10) == []


def test_max_processes_caps_what_a_worker_may_start() -> None:
    marker = _marker()
    with rk_serve(REWARDS, "--workers", "1", "--max-processes", "5") as url:
        response = _post(url, "forks_many", count=40, marker=marker)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["score"] == 0.0, body
        assert "stopped after" in body["reason"], body
        started = int(body["reason"].split()[2].rstrip(":"))
        assert started <= 5, body
        assert _wait_until_none(marker, 5) == []
        # The cap holds item after item: the processes of the last one do not count.
        again = _post(url, "forks_many", count=3, marker=marker).json()
        assert again["score"] == 1.0, again


@pytest.mark.parametrize("spin", [False, True], ids=["sleep", "cpu-loop"])
def test_a_blocking_async_reward_times_out_without_freezing_the_server(spin: bool) -> None:
    with rk_serve(REWARDS, "--workers", "1") as url, httpx.Client(timeout=30) as client:
        start = time.monotonic()
        response = client.post(
            f"{url}/evaluate/blocks_loop", json={"messages": MESSAGES, "seconds": 4, "spin": spin}
        )
        assert response.status_code == 504, response.text
        assert time.monotonic() - start < 3.9
        # While another call blocks its loop, /health and other rewards answer at once.
        with httpx.Client(timeout=30) as other:
            body = {"messages": MESSAGES, "seconds": 2, "spin": spin}
            pending = other.build_request("POST", f"{url}/evaluate/blocks_loop", json=body)
            import threading

            thread = threading.Thread(target=other.send, args=(pending,), daemon=True)
            thread.start()
            time.sleep(0.3)
            probe = time.monotonic()
            assert client.get(f"{url}/health").status_code == 200
            assert time.monotonic() - probe < 0.5
            thread.join(10)


def test_an_inline_async_reward_that_blocks_is_a_timeout_never_a_score() -> None:
    # isolation="inline" asks for the server's own loop: blocking it is then visible as lag.
    with rk_serve(REWARDS, "--workers", "1") as url:
        response = _post(url, "blocks_server_loop", seconds=1.5)
        assert response.status_code == 504, response.text
        time.sleep(0.3)
        text = httpx.get(f"{url}/metrics").text
        assert metric(text, "rk_event_loop_lag_seconds_sum") >= 1.0, text


def test_a_worker_that_ran_out_of_memory_is_replaced() -> None:
    with rk_serve(REWARDS, "--workers", "1", "--memory-limit-mb", "400") as url:
        first = _post(url, "hoards", mb=150).json()
        # The hoard stays in the worker: the next allocation fails...
        failed = _post(url, "hoards", mb=250)
        assert failed.status_code == 500, failed.text
        assert failed.json()["error"]["code"] == "crashed"
        assert "memory" in failed.json()["error"]["message"]
        # ...and the worker is replaced: the same request now fits.
        again = _post(url, "hoards", mb=250)
        assert again.status_code == 200, again.text
        assert again.json()["reason"] != first["reason"]  # another pid


def test_resident_memory_near_the_limit_retires_the_worker() -> None:
    # RLIMIT_AS counts address space, RSS what is resident: 830 MiB resident is past 80% of
    # 1,000 while the worker's address space still fits under it.
    with rk_serve(REWARDS, "--workers", "1", "--memory-limit-mb", "1000") as url:
        first = _post(url, "hoards", mb=830).json()
        second = _post(url, "hoards").json()
        assert second["reason"] != first["reason"]


def test_leftover_threads_retire_the_worker() -> None:
    with rk_serve(REWARDS, "--workers", "1") as url:
        first = _post(url, "leaves_thread").json()["reason"]
        second = _post(url, "pid").json()["reason"]
        third = _post(url, "pid").json()["reason"]
        assert first != second
        assert second == third  # an ordinary item does not retire the worker


def test_threads_threading_cannot_see_also_retire_the_worker() -> None:
    with rk_serve(REWARDS, "--workers", "1") as url:
        first = _post(url, "leaves_c_thread").json()["reason"]
        assert _post(url, "pid").json()["reason"] != first


def test_workers_die_with_a_killed_server() -> None:
    port = free_port()
    command = [str(Path(sys.executable).parent / "rk-serve"), REWARDS, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", server)
        below = psutil.Process(server.pid).children(recursive=True)
        assert len(below) >= 3  # the fork server and two workers
    finally:
        server.kill()  # SIGKILL: no shutdown code runs
        server.wait(timeout=30)
    _gone, alive = psutil.wait_procs(below, timeout=10)
    assert alive == [], alive


def test_max_tasks_per_worker() -> None:
    with rk_serve(REWARDS, "--workers", "1", "--max-tasks-per-worker", "3") as url:
        pids = [_post(url, "pid").json()["reason"] for _ in range(7)]
    assert pids[0] == pids[1] == pids[2] != pids[3], pids
    assert pids[3] == pids[4] == pids[5] != pids[6], pids


def test_cwd_environ_and_sys_path_do_not_leak_into_later_items() -> None:
    with rk_serve(REWARDS, "--workers", "1") as url:
        before = ast.literal_eval(_post(url, "looks_around").json()["reason"])
        assert _post(url, "pollutes").status_code == 200
        after = ast.literal_eval(_post(url, "looks_around").json()["reason"])
    assert after == before
    assert after["polluted_env"] is False
    assert after["polluted_path"] is False


def test_server_secrets_are_not_in_the_workers_environment() -> None:
    env = {"RK_API_KEYS": "test " + "k" * 32, "MY_SECRET_TOKEN": "s3cr3t"}
    with rk_serve(REWARDS, "--workers", "1", "--worker-env-drop", "MY_SECRET_*", env=env) as url:
        headers = {"Authorization": "Bearer " + "k" * 32}
        body = {"messages": MESSAGES}
        response = httpx.post(f"{url}/evaluate/looks_around", json=body, headers=headers)
        assert response.status_code == 200, response.text
        seen = ast.literal_eval(response.json()["reason"])
        assert seen["secrets"] == []
        assert seen["in_proc"] == []  # /proc/self/environ and the fork server's too


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_what_a_reward_prints_is_capped_and_escaped(tmp_path: Path, log_format: str) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    command = [
        str(Path(sys.executable).parent / "rk-serve"),
        REWARDS,
        *("--port", str(port), "--log-format", log_format),
    ]
    with log.open("wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=output, env=dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(url, server)
            assert _post(url, "chatty", mb=50).status_code == 200
            assert _post(url, "chatty", mb=1).status_code == 200
            assert _post(url, "chatty", mb=0).status_code == 200  # only the forged lines
            time.sleep(0.5)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert len(text) < 1_000_000, len(text)
    assert "output capped at 65536 bytes per item" in text
    forged = [line for line in text.splitlines() if line.startswith("2026-01-01 INFO auth ok")]
    assert forged == []
    assert "\x1b" not in text
    shown = "2026-01-01 INFO auth ok\\x1b[2J"  # escaped, in a record of its own
    if log_format == "json":  # one JSON object per line, the reward's output included
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        printed = [r["message"] for r in records if r["logger"] == "reward_kit.worker.output"]
        assert shown in printed, printed[-5:]
    else:
        assert f"] {shown}" in text


def test_workers_have_a_memory_limit_by_default() -> None:
    from reward_kit.engine import default_memory_limit_mb

    limit = default_memory_limit_mb(2)
    with rk_serve(REWARDS, "--workers", "2") as url:
        response = _post(url, "hoards", mb=limit + 64)
        assert response.status_code == 500, response.text
        assert f"memory limit of {limit} MiB" in response.json()["error"]["message"]
        assert _post(url, "hoards", mb=16).status_code == 200


def test_the_cheap_thread_count_falls_back_to_the_listing() -> None:
    """The count after each item is one fstat of /proc/self/task (issue 17); a reward that
    closes or replaces that descriptor gets the listing instead, never a wrong count."""
    import threading

    from reward_kit.engine import _process_tree

    counter = _process_tree.ThreadCounter()
    assert counter() == _process_tree.thread_count()
    release = threading.Event()
    extra = threading.Thread(target=release.wait)
    extra.start()
    try:
        assert counter() == _process_tree.thread_count()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, counter._fd)  # another file behind the same number
        os.close(null)
        assert counter() == _process_tree.thread_count()
        os.close(counter._fd)
        assert counter() == _process_tree.thread_count()
    finally:
        release.set()
        extra.join()


def test_workers_do_not_import_from_the_servers_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's fork server is `python -c`, whose first import path is the working
    directory: a `reward_kit` there (a checkout, a vendored copy) must not be what the workers
    run. Nor does the variable that keeps it out reach the rewards."""
    fake = tmp_path / "reward_kit"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise SystemExit('the working directory copy')\n")
    monkeypatch.chdir(tmp_path)
    with rk_serve(REWARDS, "--workers", "1") as url:
        answer = _post(url, "has_variable", name="PYTHONSAFEPATH").json()
        assert answer["score"] == 0.0
        assert answer["reason"] == str(tmp_path)  # the workers still run in it
