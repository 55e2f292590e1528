"""Hostile reward functions against a real uvicorn on loopback: each is contained with the right
status, /health keeps answering, and the other items of the same batch are still scored."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def probing_health(url: str) -> Iterator[list[float]]:
    """Poll /health every 50 ms while the block runs; yields the list of response times."""
    health_times: list[float] = []
    stop = threading.Event()
    probing = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=url) as client:
            while not stop.is_set():
                start = time.perf_counter()
                assert client.get("/health", timeout=30).status_code == 200
                health_times.append(time.perf_counter() - start)
                probing.set()
                time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    # Some functions fail in milliseconds (hog hits RLIMIT_AS at once): without this the request
    # can finish before the first probe and the checks after the block would race.
    assert probing.wait(timeout=10)
    try:
        yield health_times
    finally:
        stop.set()
        prober.join()


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
        # The deadline fired: a reward that catches it and returns 0 is still a timeout.
        ("swallow_timeout", 504, "timeout", "1s deadline"),
        ("swallow_timeout_async", 504, "timeout", "1s deadline"),
        # Swallows every soft deadline and keeps going: the worker is killed.
        ("swallow_and_spin", 504, "timeout", "worker was killed"),
    ],
)
def test_hostile_function_gets_its_status_while_health_answers(
    server: LiveServer, function: str, status: int, code: str, needle: str
) -> None:
    with probing_health(server.url) as health_times:
        response = httpx.post(
            f"{server.url}/evaluate/{function}", json={"messages": MESSAGES}, timeout=30
        )
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
        "swallow",
        "good",
    ] * 2
    items = [{"messages": MESSAGES, "ground_truth": "4", "behaviour": b} for b in behaviours]
    with probing_health(server.url) as health_times:
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
        "swallow": "timeout",
    }
    assert [r["status"] for r in results] == [expected[b] for b in behaviours]
    assert all(r["result"]["score"] == 1.0 for r in results if r["status"] == "ok")
    # Six hung items with a 1 s deadline on 2 workers: bounded by deadlines, not serialised.
    assert elapsed < 20
    # The event loop never waits on the pool: /health answers while the batch runs.
    assert len(health_times) >= 5
    assert max(health_times) < 1.0, health_times


def test_swallowed_deadlines_are_timeouts_in_a_batch(server: LiveServer) -> None:
    functions = [
        "good",
        "swallow_timeout",
        "good",
        "swallow_timeout_async",
        "swallow_and_linger_async",
        "swallow_and_spin",
        "good",
    ]
    items = [{"messages": MESSAGES, "ground_truth": "4", "function": f} for f in functions]
    start = time.perf_counter()
    response = httpx.post(f"{server.url}/batch_evaluate", json={"items": items}, timeout=60)
    elapsed = time.perf_counter() - start
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "timeout" if f.startswith("swallow") else "ok" for f in functions
    ], results
    assert all(r["result"] is None for r in results if r["status"] == "timeout")
    assert all(r["result"]["score"] == 1.0 for r in results if r["status"] == "ok")
    # Deadlines of 1 s (and a hard one of 2.5 s): the async reward that lingers for ~5 s after
    # its cancellation is not waited for (waiting would take 6 s; the rest is a busy machine).
    assert elapsed < 5.5, elapsed


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
    # No queue: over the limit is refused at once (the queue is tested in test_admission.py).
    settings = ServeSettings(
        targets=(str(FIXTURES / "cpu_rewards.py"),), workers=1, max_in_flight=1, max_queued=0
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
    assert response.headers["retry-after"] == "1"  # nothing has finished: nothing to go on
    assert response.json()["error"]["code"] == "overloaded"
