"""Admission over HTTP, against real servers on loopback: a trainer's burst waits in a bounded
FIFO queue instead of getting 429s; the queue's limits answer 429 with a computed Retry-After;
a client that leaves frees its place; draining answers the queue 503."""

from __future__ import annotations

import asyncio
import math
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest

from reward_kit.service import ServeSettings, create_app
from reward_kit.service._admission import MIN_LEARNT

from ..conftest import FIXTURES, LiveServer, error_of, metric, rk_serve
from ..security.http_helpers import request, serving

pytestmark = pytest.mark.slow

REWARDS = str(FIXTURES / "service_rewards.py")
MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def slow(seconds: float, **extra: Any) -> dict[str, Any]:
    return {"messages": MESSAGES, "seconds": seconds, **extra}


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def health(url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/health").json()
    return answer


class Posts:
    """Requests sent from threads; answers kept in the order they arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[str, httpx.Response]] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def send(self, name: str, body: dict[str, Any], path: str = "/evaluate/slow") -> None:
        def post() -> None:
            response = httpx.post(self.url + path, json=body, timeout=60)
            with self.lock:
                self.answers.append((name, response))

        thread = threading.Thread(target=post)
        thread.start()
        self.threads.append(thread)

    def join(self) -> dict[str, httpx.Response]:
        for thread in self.threads:
            thread.join(timeout=60)
        return dict(self.answers)

    def order(self) -> list[str]:
        return [name for name, _ in self.answers]


@contextmanager
def live(**settings: Any) -> Iterator[LiveServer]:
    options = {"targets": (REWARDS,), "workers": 1, **settings}
    with LiveServer(create_app(settings=ServeSettings(**options))) as server:
        yield server


async def burst(url: str, path: str, bodies: list[bytes]) -> list[httpx.Response]:
    """Every body posted at once, each on its own connection, with no retry: a trainer's
    samples arriving together."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        sends = [client.post(path, content=body, headers=headers) for body in bodies]
        return list(await asyncio.gather(*sends))


@pytest.fixture(scope="module")
def default_server() -> Iterator[str]:
    """``rk-serve`` at its default settings (--max-in-flight 64, a worker per core)."""
    with rk_serve(str(FIXTURES / "load_rewards.py")) as url:
        yield url


ONE_SAMPLE = {
    # verl's per-sample compute_score, through the SDK: one /evaluate per sample.
    "/evaluate/fifty_ms": lambda i: {"messages": MESSAGES, "ground_truth": "4", "sample": i},
    # OpenRLHF 0.11: one sample per request.
    "/openrlhf/fifty_ms": lambda i: {
        "query": [f"Q{i}: 2+2? A: 4"],
        "prompts": [f"Q{i}: 2+2? A:"],
        "labels": ["4"],
    },
}


@pytest.mark.parametrize("path", sorted(ONE_SAMPLE))
def test_a_trainers_burst_waits_for_slots_instead_of_getting_429s(
    default_server: str, path: str
) -> None:
    # The measurement: 400 one-sample requests at once, a 50 ms reward, the default
    # settings: 147 of them used to end as 429s that outlasted OpenRLHF's 5 retries.
    bodies = [orjson.dumps(ONE_SAMPLE[path](i)) for i in range(400)]
    answers = asyncio.run(burst(default_server, path, bodies))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == 400, {s: statuses.count(s) for s in set(statuses)}
    scores = [answer.json().get("score", answer.json().get("rewards")) for answer in answers]
    assert all(score in (1.0, [1.0]) for score in scores)
    after = health(default_server)
    assert (after["in_flight"], after["queued"]) == (0, 0)
    metrics = httpx.get(f"{default_server}/metrics").text
    assert metric(metrics, "rk_queue_wait_seconds_count") > 0  # the burst did queue


def test_a_full_queue_answers_429_with_a_retry_after_computed_from_it() -> None:
    with live(max_in_flight=1, max_queued=1) as server:
        warm = httpx.post(f"{server.url}/evaluate/slow", json=slow(1.5), timeout=30)
        assert warm.status_code == 200
        posts = Posts(server.url)
        posts.send("running", slow(3))
        wait_until(lambda: health(server.url)["in_flight"] == 1, "the first request runs")
        posts.send("queued", slow(0))
        wait_until(lambda: health(server.url)["queued"] == 1, "the second one waits")
        refused = httpx.post(f"{server.url}/evaluate/slow", json=slow(0))
        state = health(server.url)
        answers = posts.join()
    message = error_of(refused, 429, "overloaded")
    assert "the queue is full (--max-queued 1)" in message
    # One request ahead, one slot: a retry fits once the running request is done, which
    # takes what requests have been holding their slot (1.5 s and more).
    seconds = state["slot_seconds"]
    assert seconds >= 1.5
    assert refused.headers["retry-after"] == str(math.ceil(seconds)) != "1"
    assert answers["running"].status_code == answers["queued"].status_code == 200


def test_a_wait_past_the_queue_timeout_or_expected_to_be_is_a_429() -> None:
    with live(max_in_flight=1, queue_timeout=1) as server:
        # The estimate refuses nobody before MIN_LEARNT requests have run: these, and "first".
        for _ in range(MIN_LEARNT - 1):
            assert httpx.post(f"{server.url}/evaluate/slow", json=slow(0.2)).status_code == 200
        posts = Posts(server.url)
        posts.send("first", slow(2))
        wait_until(lambda: health(server.url)["in_flight"] == 1, "the first request runs")
        timed_out = httpx.post(f"{server.url}/evaluate/slow", json=slow(0), timeout=30)
        posts.join()
        # Now the server knows an item holds its slot about 0.56 s (0.2 s, then 2 s at 20 %):
        # with one request running and one waiting, a newcomer's slot is about 1.1 s away,
        # more than it may wait, so it is refused at once instead of after a second in line.
        posts.send("second", slow(2))
        wait_until(lambda: health(server.url)["in_flight"] == 1, "the second request runs")
        posts.send("queued", slow(0))
        wait_until(lambda: health(server.url)["queued"] == 1, "the third one waits")
        refused = httpx.post(f"{server.url}/evaluate/slow", json=slow(0), timeout=30)
        metrics = httpx.get(f"{server.url}/metrics").text
        answers = posts.join()
    assert "none came free within --queue-timeout (1s)" in error_of(timed_out, 429, "overloaded")
    assert "more than --queue-timeout (1s)" in error_of(refused, 429, "overloaded")
    assert int(refused.headers["retry-after"]) >= 1
    assert metric(metrics, "rk_admission_refused_total", reason="expected_wait") == 1
    assert answers["second"].status_code == 200


def test_a_big_batch_does_not_make_one_sample_requests_look_long() -> None:
    # The audit's probe: a 600-item batch first holds its slot ~15 s; learnt per request, that
    # made the next burst of one-sample requests look 600 times as long as it is, and 211 of
    # 400 were refused at once.
    path = "/evaluate/fifty_ms"
    with rk_serve(str(FIXTURES / "load_rewards.py")) as url:
        batch = {"items": [{"messages": MESSAGES}] * 600}
        assert httpx.post(f"{url}/batch_evaluate/fifty_ms", json=batch, timeout=120).is_success
        bodies = [orjson.dumps(ONE_SAMPLE[path](i)) for i in range(400)]
        answers = asyncio.run(burst(url, path, bodies))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == 400, {s: statuses.count(s) for s in set(statuses)}


def test_a_client_that_leaves_the_queue_frees_its_place() -> None:
    with live(max_in_flight=1, max_queued=1) as server:
        posts = Posts(server.url)
        posts.send("running", slow(2))
        wait_until(lambda: health(server.url)["in_flight"] == 1, "the first request runs")
        body = orjson.dumps(slow(0))
        leaving = socket.create_connection(("127.0.0.1", server.port))
        leaving.sendall(request("POST", "/evaluate/slow", body, content_type="application/json"))
        wait_until(lambda: health(server.url)["queued"] == 1, "the second one waits")
        leaving.close()
        wait_until(lambda: health(server.url)["queued"] == 0, "the queue notices")
        posts.send("after", slow(0))  # the place is free again: queued, not refused
        answers = posts.join()
        wait_until(lambda: health(server.url)["in_flight"] == 0, "every slot comes back")
        metrics = httpx.get(f"{server.url}/metrics").text
    assert answers["running"].status_code == answers["after"].status_code == 200
    assert metric(metrics, "rk_requests_total", status="499") == 1  # logged as the client's


def test_the_queue_is_first_come_first_served() -> None:
    with live(max_in_flight=1) as server:
        posts = Posts(server.url)
        posts.send("running", slow(1))
        wait_until(lambda: health(server.url)["in_flight"] == 1, "the first request runs")
        for position in range(1, 6):
            posts.send(f"queued-{position}", slow(0.1))
            wait_until(lambda p=position: health(server.url)["queued"] == p, "it waits")
        answers = posts.join()
    assert all(answer.status_code == 200 for answer in answers.values())
    assert posts.order() == ["running", *(f"queued-{p}" for p in range(1, 6))]


def test_a_draining_server_answers_its_queue_503_at_once() -> None:
    args = ("--workers", "1", "--max-in-flight", "1", "--shutdown-grace", "8")
    with serving(REWARDS, *args) as server:
        posts = Posts(server.url)
        posts.send("running", slow(3))
        wait_until(lambda: health(server.url)["in_flight"] == 1, "the first request runs")
        for name in ("queued-1", "queued-2"):
            posts.send(name, slow(0))
        wait_until(lambda: health(server.url)["queued"] == 2, "two wait")
        server.process.send_signal(signal.SIGTERM)
        answers = posts.join()
        assert server.process.wait(timeout=30) == 0
    # The queued requests are answered as the shutdown starts, not when the grace runs out:
    # before the running request, which finishes within the grace.
    assert sorted(posts.order()[:2]) == ["queued-1", "queued-2"]
    assert posts.order()[2] == "running"
    for name in ("queued-1", "queued-2"):
        assert "retry it" in error_of(answers[name], 503, "shutting_down")
        assert answers[name].headers["retry-after"] == "1"
    assert answers["running"].status_code == 200
