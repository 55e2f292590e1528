"""Hostile reward functions against a real uvicorn on loopback: each is contained with the right
status, /health keeps answering, and the other items of the same batch are still scored."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from reward_kit.service import ServeSettings, create_app

from ..conftest import FIXTURES, HOSTILE, LiveServer

MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    settings = ServeSettings(targets=(HOSTILE,), workers=2, memory_limit_mb=1024)
    with LiveServer(create_app(settings=settings)) as live:
        yield live


@pytest.mark.parametrize(
    ("function", "status", "code", "needle"),
    [
        ("spin", 504, "timeout", "deadline"),
        ("sleeper", 504, "timeout", "deadline"),
        ("exits", 500, "crashed", "exited with code 1"),
        ("segfault", 500, "crashed", "SIGSEGV"),
        ("hog", 500, "crashed", "memory limit of 1024 MiB"),
        ("raises", 500, "function_error", "ZeroDivisionError: division by zero"),
        ("wrong_type", 500, "function_error", "'wrong_type' returned str"),
    ],
)
def test_hostile_function_gets_its_status_while_health_answers(
    server: LiveServer, function: str, status: int, code: str, needle: str
) -> None:
    health_times: list[float] = []
    stop = threading.Event()
    probing = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=server.url) as client:
            while not stop.is_set():
                start = time.perf_counter()
                assert client.get("/health").status_code == 200
                health_times.append(time.perf_counter() - start)
                probing.set()
                time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    # Some functions fail in milliseconds (hog hits RLIMIT_AS at once): without this the request
    # can finish before the first probe and the check below would race.
    assert probing.wait(timeout=10)
    try:
        response = httpx.post(
            f"{server.url}/evaluate/{function}", json={"messages": MESSAGES}, timeout=30
        )
    finally:
        stop.set()
        prober.join()
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert needle in error["message"]
    assert health_times
    assert max(health_times) < 1.0
    after = httpx.post(
        f"{server.url}/evaluate/good", json={"messages": MESSAGES, "ground_truth": "4"}
    )
    assert after.json()["score"] == 1.0


def test_one_batch_mixing_every_failure_scores_the_rest(server: LiveServer) -> None:
    behaviours = [
        "good",
        "spin",
        "good",
        "sleep",
        "exit",
        "good",
        "segfault",
        "hog",
        "raise",
        "good",
    ] * 2
    items = [{"messages": MESSAGES, "ground_truth": "4", "behaviour": b} for b in behaviours]
    start = time.perf_counter()
    response = httpx.post(
        f"{server.url}/batch_evaluate/routed?timeout=1", json={"items": items}, timeout=60
    )
    elapsed = time.perf_counter() - start
    results = response.json()["results"]
    expected = {
        "good": "ok",
        "spin": "timeout",
        "sleep": "timeout",
        "exit": "crashed",
        "segfault": "crashed",
        "hog": "crashed",
        "raise": "error",
    }
    assert [r["status"] for r in results] == [expected[b] for b in behaviours]
    assert all(r["result"]["score"] == 1.0 for r in results if r["status"] == "ok")
    # Four hung items with a 1 s deadline on 2 workers: bounded by deadlines, not serialised.
    assert elapsed < 15


def test_workers_are_replaced_and_none_leak(server: LiveServer) -> None:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    for _ in range(3):
        httpx.post(f"{server.url}/evaluate/exits", json={"messages": MESSAGES}, timeout=30)
    time.sleep(0.5)
    after = me.children(recursive=True)
    workers = [p for p in after if p.pid not in before and p.is_running()]
    # The dead workers were replaced, not accumulated: the pool size stays the same.
    assert len(after) <= len(before) + 1, (before, workers)
    ok = httpx.post(f"{server.url}/evaluate/good", json={"messages": MESSAGES, "ground_truth": "4"})
    assert ok.status_code == 200


def test_in_flight_limit_answers_429_with_retry_after(live_server: type[LiveServer]) -> None:
    settings = ServeSettings(
        targets=(str(FIXTURES / "cpu_rewards.py"),), workers=1, max_in_flight=1
    )
    with live_server(create_app(settings=settings)) as live:
        slow = threading.Thread(
            target=httpx.post,
            args=(f"{live.url}/evaluate",),
            kwargs={"json": {"messages": MESSAGES, "ms": 1500}, "timeout": 30},
        )
        slow.start()
        try:
            deadline = time.monotonic() + 10
            while httpx.get(f"{live.url}/health").json()["in_flight"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            response = httpx.post(f"{live.url}/evaluate", json={"messages": MESSAGES})
        finally:
            slow.join()
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "overloaded"
