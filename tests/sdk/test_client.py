"""Both clients against a real evaluator on loopback: the whole protocol, no mocks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import httpx
import pytest

from reward_kit import (
    AuthenticationError,
    FunctionError,
    PermissionDenied,
    UnknownFunction,
)
from reward_kit.sdk import ApiKey, AsyncEvaluatorClient, EvaluatorClient, ItemResult, make_item
from reward_kit.sdk._core import ClientConfig

from ..conftest import LiveServer
from .conftest import KEY, AsyncCountingTransport, CountingTransport, make_server

CONVERSATION = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def items(count: int, *, fail: set[int] = frozenset(), pad: int = 0) -> list[dict[str, Any]]:
    return [
        make_item(
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": f"a{i}" + "x" * pad},
            ],
            {"i": i},
            kwargs={"behaviour": "raise" if i in fail else "good", "row": i},
        )
        for i in range(count)
    ]


def received(result: ItemResult) -> dict[str, Any]:
    assert result.result is not None, result.error
    return dict(json.loads(result.result.reason or "{}"))


def batch(mode: str, url: str, data: list[dict[str, Any]], **options: Any) -> list[ItemResult]:
    """Run batch_evaluate through the sync or the async client with the same options."""
    if mode == "sync":
        with EvaluatorClient(url, auth=ApiKey(KEY), **options) as client:
            return client.batch_evaluate(data, function="echo")

    async def run() -> list[ItemResult]:
        async with AsyncEvaluatorClient(url, auth=ApiKey(KEY), **options) as client:
            return await client.batch_evaluate(data, function="echo")

    return asyncio.run(run())


def test_health_and_functions(server: LiveServer, auth: ApiKey) -> None:
    with EvaluatorClient(server.url, auth=auth) as client:
        assert client.health()["status"] == "ok"
        assert {f["name"] for f in client.functions()} == {"echo", "fails"}


def test_evaluate_sends_any_json_ground_truth_tools_and_kwargs(
    server: LiveServer, auth: ApiKey
) -> None:
    tools = [{"type": "function", "function": {"name": "add"}}]
    with EvaluatorClient(server.url, auth=auth) as client:
        result = client.evaluate(
            CONVERSATION, {"answer": [4]}, function="echo", tools=tools, level=3
        )
    got = json.loads(result.reason or "")
    assert result.score == pytest.approx(0.01)
    assert got["ground_truth"] == {"answer": [4]}
    assert got["kwargs"] == {"tools": tools, "level": 3}
    assert got["texts"] == ["2+2?", "4"]


def test_async_evaluate_matches_sync(server: LiveServer, auth: ApiKey) -> None:
    async def run() -> float:
        async with AsyncEvaluatorClient(server.url, auth=auth) as client:
            return (await client.evaluate(CONVERSATION, "4", function="echo")).score

    assert asyncio.run(run()) == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("auth", "function", "error"),
    [
        (ApiKey(KEY), "fails", FunctionError),
        (ApiKey(KEY), "nope", UnknownFunction),
        (None, "echo", AuthenticationError),
        (ApiKey("wrong-key-0123456789abcdef"), "echo", PermissionDenied),
    ],
)
def test_server_errors_come_back_as_the_same_class(
    server: LiveServer, auth: ApiKey | None, function: str, error: type[Exception]
) -> None:
    with EvaluatorClient(server.url, auth=auth) as client, pytest.raises(error):
        client.evaluate(CONVERSATION, function=function)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_batch_keeps_order_and_reports_failures_in_their_slots(
    server: LiveServer, mode: str
) -> None:
    results = batch(mode, server.url, items(12, fail={3, 7}))
    assert [r.index for r in results] == list(range(12))
    assert [r.ok for r in results] == [i not in {3, 7} for i in range(12)]
    assert results[3].score is None
    assert results[3].error is not None
    assert results[3].error.code == "function_error"
    assert isinstance(results[3].error.exception(), FunctionError)
    assert [received(r)["kwargs"]["row"] for r in results if r.ok] == [
        i for i in range(12) if i not in {3, 7}
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_batch_is_split_by_items_and_sent_concurrently(server: LiveServer, mode: str) -> None:
    transport = CountingTransport() if mode == "sync" else AsyncCountingTransport()
    results = batch(
        mode, server.url, items(25), max_batch_items=4, max_concurrency=3, transport=transport
    )
    assert transport.paths.count("/batch_evaluate") == 7
    assert [received(r)["ground_truth"]["i"] for r in results] == list(range(25))


def test_batch_is_split_by_bytes(server: LiveServer) -> None:
    transport = CountingTransport()
    data = items(10, pad=1000)  # about 1.1 kB each
    results = batch("sync", server.url, data, max_batch_bytes=3000, transport=transport)
    assert 4 <= transport.paths.count("/batch_evaluate") <= 10
    assert [received(r)["ground_truth"]["i"] for r in results] == list(range(10))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_server_limits_below_the_clients_are_met_by_splitting(mode: str) -> None:
    # The server takes at most 3 items and 4 kB; the client does not know and learns from 413s.
    with make_server(max_batch_items=3, max_body_bytes=4000) as live:
        data = items(8)
        data.insert(5, items(1, pad=6000)[0])  # one item alone is over the byte limit
        results = batch(mode, live.url, data)
    assert len(results) == 9
    assert [r.index for r in results] == list(range(9))
    assert results[5].status == "invalid"
    assert results[5].error is not None
    assert results[5].error.code == "payload_too_large"
    assert all(r.ok for i, r in enumerate(results) if i != 5)
    assert [received(r)["kwargs"]["row"] for r in results if r.ok] == list(range(8))


def test_empty_batch_sends_nothing(server: LiveServer) -> None:
    transport = CountingTransport()
    assert batch("sync", server.url, [], transport=transport) == []
    assert transport.paths == []


def test_constructor_is_keyword_only_and_checks_limits() -> None:
    with pytest.raises(TypeError):
        EvaluatorClient("http://127.0.0.1:1", None)  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_batch_items"):
        EvaluatorClient("http://127.0.0.1:1", max_batch_items=0)
    with pytest.raises(ValueError, match="http"):
        EvaluatorClient("127.0.0.1:8000")


def test_async_health_and_functions(server: LiveServer, auth: ApiKey) -> None:
    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with AsyncEvaluatorClient(server.url, auth=auth) as client:
            return await client.health(), await client.functions()

    health, functions = asyncio.run(run())
    assert health["status"] == "ok"
    assert {f["name"] for f in functions} == {"echo", "fails"}


# -- bounded concurrency: a transport that records how many requests are in flight ----------


class InFlight:
    """Answers each batch after a pause, recording the most requests it had at once."""

    def __init__(self) -> None:
        self.now = self.most = self.requests = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.requests += 1
            self.most = max(self.most, self.now)

    def leave(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.now -= 1
        count = len(json.loads(request.content)["items"])
        results = [{"index": i, "status": "ok", "result": {"score": 1.0}} for i in range(count)]
        return httpx.Response(200, json={"results": results})

    def sync(self, request: httpx.Request) -> httpx.Response:
        self.enter()
        time.sleep(0.05)
        return self.leave(request)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        self.enter()
        await asyncio.sleep(0.05)
        return self.leave(request)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("limit", [1, 3])
def test_at_most_max_concurrency_requests_in_flight(mode: str, limit: int) -> None:
    recorder = InFlight()
    handler = recorder.sync if mode == "sync" else recorder.handle_async
    config = ClientConfig(
        url="http://evaluator.test",
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        max_batch_items=2,
        max_concurrency=limit,
    )
    data = items(24)
    if mode == "sync":
        with EvaluatorClient.from_config(config) as client:
            results = client.batch_evaluate(data)
    else:

        async def run() -> list[ItemResult]:
            async with AsyncEvaluatorClient.from_config(config) as client:
                return await client.batch_evaluate(data)

        results = asyncio.run(run())
    assert len(results) == 24
    assert recorder.requests == 12
    assert recorder.most <= limit
    assert recorder.most >= min(limit, 2)  # the limit is used, not just respected


# -- what the base install needs ----------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_importing_the_sdk_imports_no_server_framework() -> None:
    done = run_python(
        """
        import sys
        import reward_kit.sdk
        import reward_kit.sdk.verl
        heavy = sorted(m for m in ("fastapi", "uvicorn", "starlette", "torch") if m in sys.modules)
        print(heavy)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_sdk_works_without_orjson() -> None:
    # sys.modules["orjson"] = None makes `import orjson` raise ImportError, as if not installed.
    done = run_python(
        """
        import json, sys
        sys.modules["orjson"] = None
        import httpx
        from reward_kit.sdk import EvaluatorClient, make_item, trl_reward_sync
        from reward_kit.sdk import _core

        assert _core.orjson is None
        seen = []

        def handle(request):
            body = json.loads(request.content)
            seen.append(body)
            if request.url.path == "/evaluate/echo":
                return httpx.Response(200, json={"score": 0.5, "reason": body["ground_truth"]})
            results = [
                {"index": i, "status": "ok", "result": {"score": 1.0}}
                for i in range(len(body["items"]))
            ]
            return httpx.Response(200, json={"results": results})

        class Array:  # a numpy-like value: encoded through .tolist()
            def tolist(self):
                return [1, 2]

        client = EvaluatorClient("http://h.test", transport=httpx.MockTransport(handle))
        result = client.evaluate([{"role": "user", "content": "é"}], "ü", function="echo")
        assert (result.score, result.reason) == (0.5, "ü"), result
        batch = client.batch_evaluate([make_item([{"role": "user", "content": "x"}],
                                                 {"a": Array()})] * 3, function="echo")
        assert [r.score for r in batch] == [1.0] * 3
        assert seen[1]["items"][0]["ground_truth"] == {"a": [1, 2]}
        reward = trl_reward_sync(client, function="echo")
        assert reward(prompts=["p"], completions=["c"], solution=["s"]) == [1.0]
        assert "orjson" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
