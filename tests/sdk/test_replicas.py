"""One client, several evaluator replicas: real rk-serve processes on loopback.

Each replica serves tests/sdk/replica_rewards.py with its own REPLICA_NAME, which every result's
reason carries, so a test sees which replica scored which item. A replica is SIGKILLed in the
middle of a batch, another answers 503 or 429 (a real overloaded rk-serve), and every item must
still come back once, in its place, scored right.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reward_kit import ConfigurationError, EvaluatorUnavailable
from reward_kit.sdk import (
    ApiKey,
    AsyncEvaluatorClient,
    EvaluatorClient,
    ItemResult,
    make_item,
    trl_reward,
    trl_reward_sync,
)
from reward_kit.sdk._core import ClientConfig
from reward_kit.sdk.openrlhf import reward_func_fn
from reward_kit.sdk.verl import batch_compute_score_fn, compute_score_fn

from ..conftest import LiveServer, free_port, wait_for_health

REWARDS = str(Path(__file__).with_name("replica_rewards.py"))
KEY = "replica-test-key-0123456789abcdef"


class Replica:
    """One rk-serve process serving ``whoami`` as ``name``; killable."""

    def __init__(self, name: str, *args: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(Path(sys.executable).parent / "rk-serve"), REWARDS, "--port", str(self.port),
            "--workers", "0", "--log-level", "warning", *args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "REPLICA_NAME": name, "RK_API_KEYS": KEY},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait(self) -> Replica:
        wait_for_health(self.url, self.process)
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


def start(*names: str, args: tuple[str, ...] = ()) -> list[Replica]:
    replicas = [Replica(name, *args) for name in names]  # they start side by side
    return [replica.wait() for replica in replicas]


@pytest.fixture(scope="module")
def trio() -> Iterator[list[Replica]]:
    replicas = start("a", "b", "c")
    try:
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


class Recorder(httpx.HTTPTransport):
    """A real transport that records the port of every request and what became of it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, str]] = []
        self.lock = threading.Lock()
        self.on_answer: Any = None

    def record(self, port: int, outcome: str) -> None:
        with self.lock:
            self.seen.append((port, outcome))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port or 0
        try:
            response = super().handle_request(request)
        except httpx.TransportError as error:
            self.record(port, type(error).__name__)
            raise
        self.record(port, str(response.status_code))
        if self.on_answer is not None:
            self.on_answer(port, response.status_code)
        return response

    def ports(self, outcome: str | None = None) -> Counter[int]:
        with self.lock:
            return Counter(p for p, o in self.seen if outcome is None or o == outcome)


def items(count: int, **kwargs: Any) -> list[dict[str, Any]]:
    return [
        make_item([{"role": "assistant", "content": "4"}], kwargs={"id": i, **kwargs})
        for i in range(count)
    ]


def check_scored(results: list[ItemResult], count: int) -> list[str]:
    """Every item once, in its place, with its own score; returns who scored each."""
    assert [r.index for r in results] == list(range(count))
    for i, result in enumerate(results):
        assert result.ok, (i, result)
        assert result.score == (i + 1) / 1000, (i, result)
    return [r.result.reason or "" for r in results if r.result is not None]


def runs(names: list[str]) -> list[tuple[str, int]]:
    """Consecutive runs of the same name: [("a", 100), ("b", 100)...]."""
    out: list[tuple[str, int]] = []
    for name in names:
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + 1)
        else:
            out.append((name, 1))
    return out


# -- sharding ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_batch_is_cut_into_one_shard_per_replica_and_kept_in_order(
    trio: list[Replica], mode: str
) -> None:
    urls = [r.url for r in trio]
    if mode == "sync":
        with EvaluatorClient(urls, auth=KEY) as client:
            results = client.batch_evaluate(items(301), function="whoami")
    else:

        async def run() -> list[ItemResult]:
            async with AsyncEvaluatorClient(urls, auth=KEY) as client:
                return await client.batch_evaluate(items(301), function="whoami")

        results = asyncio.run(run())
    shards = runs(check_scored(results, 301))
    # Three contiguous shards of 101, 100 and 100 items, one per replica.
    assert sorted(n for _, n in shards) == [100, 100, 101]
    assert sorted(name for name, _ in shards) == ["a", "b", "c"]


def test_shards_respect_the_size_limits_within_each_replica(trio: list[Replica]) -> None:
    recorder = Recorder()
    urls = [r.url for r in trio[:2]]
    with EvaluatorClient(urls, auth=KEY, max_batch_items=10, transport=recorder) as client:
        results = client.batch_evaluate(items(60), function="whoami")
    shards = runs(check_scored(results, 60))
    assert [n for _, n in shards] == [30, 30]
    assert sorted(recorder.ports("200").values()) == [3, 3]  # 3 requests of 10 per replica


def test_single_requests_go_round_robin(trio: list[Replica]) -> None:
    with EvaluatorClient([r.url for r in trio], auth=KEY) as client:
        served = [
            client.evaluate([{"role": "assistant", "content": "4"}], function="whoami", id=1).reason
            for _ in range(6)
        ]
    assert served[:3] == ["a", "b", "c"]
    assert served[3:] == served[:3]


def test_a_comma_separated_rk_evaluator_url(
    trio: list[Replica], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_EVALUATOR_URL", f" {trio[0].url}/ , {trio[1].url}")
    monkeypatch.setenv("RK_API_KEY", KEY)  # the default credential, for each replica
    with EvaluatorClient() as client:
        assert client.config.urls == (trio[0].url, trio[1].url)
        shards = runs(check_scored(client.batch_evaluate(items(8), function="whoami"), 8))
    assert shards == [("a", 4), ("b", 4)]


def test_no_url_and_no_rk_evaluator_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="RK_EVALUATOR_URL"):
        EvaluatorClient()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://a:1,,http://b:1", "empty URL"),
        ("http://a:1,ftp://b:1", "must start with http"),
        (["http://a:1", "http://a:1/"], "listed more than once"),
        ([], "empty URL"),
    ],
)
def test_bad_replica_lists_are_refused(url: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EvaluatorClient(url, auth=False)


# -- failover ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_replica_killed_mid_batch_loses_no_item(mode: str) -> None:
    survivor, victim = start("a", "b")
    recorder = Recorder()
    killed = threading.Event()

    def kill_after_some_answers(port: int, status: int) -> None:
        due = port == victim.port and status == 200 and not killed.is_set()
        if due and recorder.ports("200")[victim.port] >= 3:
            killed.set()
            victim.process.send_signal(signal.SIGKILL)

    recorder.on_answer = kill_after_some_answers
    # A long cool-down, so the next batch shows the dead replica is left alone.
    config = ClientConfig(
        url=f"{survivor.url},{victim.url}",
        auth=ApiKey(KEY),
        max_batch_items=10,
        max_concurrency=2,
        backoff_base=4.0,
        transport=recorder if mode == "sync" else None,
    )
    batch = items(400, ms=5)
    try:
        if mode == "sync":
            with EvaluatorClient.from_config(config) as client:
                first = client.batch_evaluate(batch, function="whoami")
                before = len(recorder.seen)
                second = client.batch_evaluate(batch, function="whoami")
                later = recorder.seen[before:]
        else:
            first, second, later = asyncio.run(_async_kill_run(config, batch, victim, killed))
    finally:
        survivor.stop()
        victim.process.kill()
        victim.process.wait(timeout=30)
    assert killed.is_set()
    names = check_scored(first, 400)
    assert 0 < names.count("b") < 200  # b scored some, the rest of its shard went to a
    assert check_scored(second, 400) == ["a"] * 400
    assert all(port == survivor.port for port, _ in later)  # b is cooling down: not even tried


async def _async_kill_run(
    config: ClientConfig, batch: list[dict[str, Any]], victim: Replica, killed: threading.Event
) -> tuple[list[ItemResult], list[ItemResult], list[tuple[int, str]]]:
    seen: list[tuple[int, str]] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            port = request.url.port or 0
            try:
                response = await super().handle_async_request(request)
            except httpx.TransportError as error:
                seen.append((port, type(error).__name__))
                raise
            seen.append((port, str(response.status_code)))
            answered = sum(1 for p, o in seen if p == victim.port and o == "200")
            if port == victim.port and answered >= 3 and not killed.is_set():
                killed.set()
                victim.process.send_signal(signal.SIGKILL)
            return response

    async with AsyncEvaluatorClient.from_config(
        dataclasses.replace(config, transport=Recording())
    ) as client:
        first = await client.batch_evaluate(batch, function="whoami")
        before = len(seen)
        second = await client.batch_evaluate(batch, function="whoami")
    return first, second, seen[before:]


def _unavailable_app(seen: list[str]) -> Starlette:
    async def answer(request: Request) -> JSONResponse:
        seen.append(request.url.path)
        body = {"error": {"code": "shutting_down", "message": "draining"}}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "20"})

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


def test_a_replica_answering_503_is_failed_over_at_once_and_left_to_cool(
    trio: list[Replica],
) -> None:
    seen: list[str] = []
    with LiveServer(_unavailable_app(seen)) as draining:
        urls = [draining.url, trio[0].url]
        start_time = time.monotonic()
        with EvaluatorClient(urls, auth=KEY) as client:
            first = check_scored(client.batch_evaluate(items(40), function="whoami"), 40)
            second = check_scored(client.batch_evaluate(items(40), function="whoami"), 40)
            singles = [
                client.evaluate([{"role": "assistant", "content": "4"}], function="whoami").reason
                for _ in range(4)
            ]
        elapsed = time.monotonic() - start_time
    assert first == second == ["a"] * 40
    assert singles == ["a"] * 4
    assert seen == ["/batch_evaluate"]  # asked once; then its Retry-After (20 s) keeps it out
    assert elapsed < 10  # nobody waited for that Retry-After: the other replica answered


def test_a_real_overloaded_replica_answers_429_and_the_batch_moves(trio: list[Replica]) -> None:
    (busy,) = start("busy", args=("--max-in-flight", "1", "--max-queued", "0"))
    try:
        holding = threading.Thread(
            target=httpx.post,
            args=(f"{busy.url}/evaluate/whoami",),
            kwargs={
                "json": {"messages": [{"role": "assistant", "content": "4"}], "ms": 4000},
                "headers": {"authorization": f"Bearer {KEY}"},
                "timeout": 30,
            },
        )
        holding.start()
        time.sleep(0.5)  # the slot is taken
        recorder = Recorder()
        started = time.monotonic()
        with EvaluatorClient([busy.url, trio[1].url], auth=KEY, transport=recorder) as client:
            names = check_scored(client.batch_evaluate(items(20), function="whoami"), 20)
        elapsed = time.monotonic() - started
        holding.join(timeout=30)
    finally:
        busy.stop()
    assert names == ["b"] * 20
    assert recorder.ports("429") == Counter({busy.port: 1})
    assert elapsed < 3  # not held behind the busy replica's 4 s item


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_replica_down_is_evaluator_unavailable(mode: str) -> None:
    ports = [free_port(), free_port()]  # nothing listens there
    config = ClientConfig(
        url=",".join(f"http://127.0.0.1:{p}" for p in ports),
        max_retries=3,
        backoff_base=0.01,
        max_batch_items=5,
    )
    if mode == "sync":
        recorder = Recorder()
        config = dataclasses.replace(config, transport=recorder)
        with (
            pytest.raises(EvaluatorUnavailable, match="could not reach"),
            EvaluatorClient.from_config(config) as client,
        ):
            client.batch_evaluate(items(3), function="whoami")
        # Two shards (2 items, 1 item), each tried 1 + 3 times, over both replicas.
        assert sum(recorder.ports().values()) == 8
        assert set(recorder.ports()) == set(ports)
    else:

        async def run() -> None:
            async with AsyncEvaluatorClient.from_config(config) as client:
                await client.evaluate([{"role": "assistant", "content": "4"}], function="whoami")

        with pytest.raises(EvaluatorUnavailable, match="could not reach"):
            asyncio.run(run())


# -- the trainer adapters take the same list -----------------------------------------------


def test_trl_rewards_take_a_list_and_a_comma_string(trio: list[Replica]) -> None:
    urls = [r.url for r in trio[:2]]
    texts = ["x" * n for n in range(1, 9)]
    batch: dict[str, Any] = {"prompts": ["q"] * 8, "completions": texts, "solution": [""] * 8}
    reasons: dict[str, list[str]] = {}

    def log_extra(key: str, values: list[str]) -> None:
        reasons[key] = values

    reward = trl_reward(urls, function="whoami", auth=KEY)
    reward = pickle.loads(pickle.dumps(reward))  # as AsyncGRPOTrainer sends it
    loop = asyncio.new_event_loop()
    try:
        rewards = loop.run_until_complete(reward(**batch, log_extra=log_extra))
        loop.run_until_complete(reward.aclose())
    finally:
        loop.close()
    assert rewards == [n / 1000 for n in range(1, 9)]
    assert reasons["whoami/reason"] == ["a"] * 4 + ["b"] * 4

    blocking = trl_reward_sync(",".join(urls), function="whoami", auth=KEY)
    assert blocking(**batch, log_extra=log_extra) == rewards
    assert reasons["whoami/reason"] == ["a"] * 4 + ["b"] * 4
    blocking.close()


def test_verl_adapters_take_a_list(trio: list[Replica]) -> None:
    urls = [r.url for r in trio]
    batch = batch_compute_score_fn(urls, function="whoami", auth=KEY)
    rows = batch(
        data_sources=["d"] * 6,
        solution_strs=["x" * n for n in range(1, 7)],
        ground_truths=[""] * 6,
    )
    assert [row["score"] for row in rows] == [n / 1000 for n in range(1, 7)]
    single = compute_score_fn(",".join(urls), function="whoami", auth=KEY)
    assert [single("d", "x" * n, "")["score"] for n in (3, 5, 7)] == [0.003, 0.005, 0.007]
    batch.close()
    single.close()


def test_openrlhf_reward_func_takes_a_list(trio: list[Replica]) -> None:
    reward = reward_func_fn([r.url for r in trio], function="whoami", auth=KEY)
    queries = ["q" + "x" * n for n in range(1, 7)]
    answer = reward(queries, ["q"] * 6, [""] * 6)
    assert [round(v, 4) for v in answer["rewards"].tolist()] == [
        round(n / 1000, 4) for n in range(1, 7)
    ]
    reward.close()
