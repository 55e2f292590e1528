"""Error paths that a healthy server cannot produce on demand: httpx.MockTransport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reward_kit import (
    AuthenticationError,
    EvaluationTimeout,
    EvaluatorUnavailable,
    FunctionError,
    Overloaded,
    RewardKitError,
)
from reward_kit.sdk import AsyncEvaluatorClient, EvaluatorClient, make_item
from reward_kit.sdk._core import ClientConfig, Failure, dumps, loads

CONVERSATION = [{"role": "assistant", "content": "4"}]
OK = {"score": 1.0, "reason": "fine", "is_score_valid": True, "metrics": {}}
Handler = Callable[[httpx.Request], httpx.Response]


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} here"}}
    return httpx.Response(status, content=dumps(body), headers=headers)


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler that plays the answers in order (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def client(handler: Handler, **options: Any) -> EvaluatorClient:
    config = ClientConfig(
        url="http://evaluator.test",
        transport=httpx.MockTransport(handler),
        backoff_base=0.01,
        backoff_max=1.0,
        **options,
    )
    return EvaluatorClient.from_config(config)


def test_503_then_success_is_retried() -> None:
    handler, seen = scripted(error(503, "unavailable"), httpx.Response(200, json=OK))
    assert client(handler).evaluate(CONVERSATION).score == 1.0
    assert len(seen) == 2


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_give_up_with_a_typed_error(status: int) -> None:
    handler, seen = scripted(httpx.Response(status))
    with pytest.raises((EvaluatorUnavailable, Overloaded)):
        client(handler, max_retries=2).evaluate(CONVERSATION)
    assert len(seen) == 3


def test_retry_after_is_honoured() -> None:
    handler, seen = scripted(
        error(429, "overloaded", {"Retry-After": "0.3"}), httpx.Response(200, json=OK)
    )
    start = time.monotonic()
    client(handler).evaluate(CONVERSATION)
    assert time.monotonic() - start >= 0.3
    assert len(seen) == 2


def test_a_retry_after_longer_than_we_would_wait_gives_up_at_once() -> None:
    handler, seen = scripted(error(429, "overloaded", {"Retry-After": "120"}))
    with pytest.raises(Overloaded) as caught:
        client(handler).evaluate(CONVERSATION)
    assert caught.value.retry_after == 120
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (error(500, "function_error"), FunctionError),
        (error(401, "unauthenticated"), AuthenticationError),
        # Our own 504: the reward function ran past its deadline; it would do so again.
        (error(504, "timeout"), EvaluationTimeout),
    ],
)
def test_other_errors_are_not_retried(answer: httpx.Response, raised: type[Exception]) -> None:
    handler, seen = scripted(answer)
    with pytest.raises(raised):
        client(handler).evaluate(CONVERSATION)
    assert len(seen) == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        # A restarting server resets the connections whose request it had not read yet.
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.WriteError("[Errno 32] Broken pipe"),
        # A keep-alive connection closed under us, and a pool with no free connection in time.
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.PoolTimeout("no connection available"),
    ],
)
def test_connection_errors_and_read_timeouts_are_retried(exc: Exception) -> None:
    handler, seen = scripted(exc, httpx.Response(200, json=OK))
    assert client(handler).evaluate(CONVERSATION).score == 1.0
    assert len(seen) == 2


def test_unreachable_after_retries_is_evaluator_unavailable() -> None:
    handler, seen = scripted(httpx.ConnectError("refused"))
    with pytest.raises(EvaluatorUnavailable, match="could not reach"):
        client(handler, max_retries=3).evaluate(CONVERSATION)
    assert len(seen) == 4


def echo_batch(flaky: set[int]) -> tuple[Handler, list[int]]:
    """Answers each chunk with its items' rows; the chunks whose first row is in ``flaky`` get
    one 503 first. Records every row it scored, so duplicates would show."""
    scored: list[int] = []
    failed_once: set[int] = set()

    def handle(request: httpx.Request) -> httpx.Response:
        body = loads(request.content)
        rows = [item["kwargs"]["row"] for item in body["items"]]
        if rows[0] in flaky and rows[0] not in failed_once:
            failed_once.add(rows[0])
            return httpx.Response(503)
        scored.extend(rows)
        results = [
            {"index": i, "status": "ok", "result": {**OK, "score": float(row)}, "error": None}
            for i, row in enumerate(rows)
        ]
        return httpx.Response(200, content=dumps({"results": results}))

    return handle, scored


def rows(count: int) -> list[dict[str, Any]]:
    return [make_item(CONVERSATION, kwargs={"row": i}) for i in range(count)]


def test_a_retried_chunk_loses_and_duplicates_nothing() -> None:
    handler, scored = echo_batch(flaky={0, 10, 20})
    results = client(handler, max_batch_items=5, max_concurrency=3).batch_evaluate(rows(23))
    assert [r.score for r in results] == [float(i) for i in range(23)]
    assert sorted(scored) == list(range(23))


def test_async_retried_chunk_loses_and_duplicates_nothing() -> None:
    handler, scored = echo_batch(flaky={5, 15})
    config = ClientConfig(
        url="http://evaluator.test",
        transport=httpx.MockTransport(handler),
        backoff_base=0.01,
        max_batch_items=5,
        max_concurrency=2,
    )

    async def run() -> list[float | None]:
        async with AsyncEvaluatorClient.from_config(config) as c:
            return [r.score for r in await c.batch_evaluate(rows(17))]

    assert asyncio.run(run()) == [float(i) for i in range(17)]
    assert sorted(scored) == list(range(17))


@pytest.mark.parametrize(
    "results",
    [
        [{"index": 0, "status": "ok", "result": OK}],  # one answer for two items
        [{"index": 0, "status": "ok", "result": OK}, {"index": 0, "status": "ok", "result": OK}],
        [{"index": 0, "status": "ok", "result": OK}, {"index": 5, "status": "ok", "result": OK}],
    ],
)
def test_a_malformed_batch_answer_is_an_error_not_a_guess(results: list[Any]) -> None:
    handler, _ = scripted(httpx.Response(200, content=dumps({"results": results})))
    with pytest.raises(RewardKitError, match=r"results|index"):
        client(handler).batch_evaluate(rows(2))


def test_an_item_error_is_never_a_zero() -> None:
    answer = {
        "results": [
            {
                "index": 0,
                "status": "timeout",
                "result": None,
                "error": {"code": "timeout", "message": "past 5s"},
            },
            {"index": 1, "status": "ok", "result": {**OK, "score": 0.0, "is_score_valid": False}},
        ]
    }
    handler, _ = scripted(httpx.Response(200, content=dumps(answer)))
    first, second = client(handler).batch_evaluate(rows(2))
    assert (first.ok, first.score, first.status) == (False, None, "timeout")
    assert isinstance(first.error.exception() if first.error else None, EvaluationTimeout)
    assert (second.ok, second.score) == (True, None)  # an invalid score is not a score


# -- the backoff itself: a pure function of the attempt, the failure and the randomness ------


def retryable(retry_after: float | None = None) -> Failure:
    return Failure(EvaluatorUnavailable("down", retry_after=retry_after), True)


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    config = ClientConfig(url="http://h", backoff_base=0.5, backoff_max=30.0, max_retries=10)
    highest = [config.retry_delay(a, retryable(), uniform=max) for a in range(8)]
    lowest = [config.retry_delay(a, retryable(), uniform=min) for a in range(8)]
    assert highest == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert lowest == [h / 2 for h in highest if h is not None]  # "equal jitter": never 0 s


def test_backoff_is_jittered_within_half_and_all_of_the_step() -> None:
    config = ClientConfig(url="http://h", backoff_base=0.5, max_retries=10)
    for attempt, step in [(0, 0.5), (3, 4.0), (9, 30.0)]:
        delays = [config.retry_delay(attempt, retryable()) for _ in range(200)]
        assert all(d is not None and step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 150  # random, so clients failing together spread out


def test_a_long_retry_after_is_honoured_up_to_max_retry_after() -> None:
    config = ClientConfig(url="http://h", max_retry_after=30.0)
    # The floor, plus up to half the first backoff step (0.25 s) of jitter.
    assert 12.5 <= config.retry_delay(0, retryable(retry_after=12.5)) <= 12.75
    assert config.retry_delay(0, retryable(retry_after=30.0), uniform=min) == 30.0
    assert config.retry_delay(0, retryable(retry_after=31.0)) is None  # "not soon": give up
    patient = ClientConfig(url="http://h", max_retry_after=120.0)
    assert patient.retry_delay(0, retryable(retry_after=90.0), uniform=min) == 90.0


def test_no_retry_when_not_retryable_or_out_of_attempts() -> None:
    config = ClientConfig(url="http://h", max_retries=2)
    assert config.retry_delay(2, retryable()) is None
    assert config.retry_delay(0, Failure(EvaluationTimeout("ran past 5s"), False)) is None


def test_max_retry_after_is_a_client_option() -> None:
    handler, seen = scripted(
        error(429, "overloaded", {"Retry-After": "0.2"}), httpx.Response(200, json=OK)
    )
    with pytest.raises(Overloaded):
        client(handler, max_retry_after=0.1).evaluate(CONVERSATION)
    assert len(seen) == 1
    assert client(handler, max_retry_after=0.5).evaluate(CONVERSATION).score == 1.0
    with pytest.raises(ValueError, match="max_retry_after"):
        ClientConfig(url="http://h", max_retry_after=-1)
    with EvaluatorClient("http://h", max_retry_after=7.0) as sync_client:
        assert sync_client.config.max_retry_after == 7.0

    async def async_option() -> float:
        async with AsyncEvaluatorClient("http://h", max_retry_after=7.0) as async_client:
            return async_client.config.max_retry_after

    assert asyncio.run(async_option()) == 7.0


@pytest.mark.parametrize(
    ("answer", "attempts"),
    [
        (httpx.Response(504, text="Gateway Time-out"), 3),  # a gateway: transient, retried
        (error(504, "timeout"), 1),  # the reward itself timed out: deterministic, per item
    ],
)
def test_504_is_retried_only_when_it_is_not_the_rewards_own_timeout(
    answer: httpx.Response, attempts: int
) -> None:
    handler, seen = scripted(answer)
    with pytest.raises((EvaluatorUnavailable, EvaluationTimeout)):
        client(handler, max_retries=2).evaluate(CONVERSATION)
    assert len(seen) == attempts


# -- Retry-After is a floor under the backoff, not a replacement -----------------------------


def documented_waits(config: ClientConfig, retry_after: float) -> list[tuple[float, float]]:
    """The (shortest, longest) wait before each retry: the jittered backoff step, or, when the
    server's Retry-After is longer, that plus up to half a step of jitter."""
    steps = [
        min(config.backoff_max, config.backoff_base * 2**attempt)
        for attempt in range(config.max_retries)
    ]
    return [
        (step / 2, step)
        if retry_after <= step / 2
        else (retry_after, max(step, retry_after + step / 2))
        for step in steps
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_retry_after_1_on_every_answer_does_not_cut_the_backoff_short(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, seen = scripted(error(429, "overloaded", {"Retry-After": "1"}))
    config = ClientConfig(url="http://evaluator.test", transport=httpx.MockTransport(handler))
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    if mode == "sync":
        monkeypatch.setattr("reward_kit.sdk._client.time.sleep", waits.append)
        with pytest.raises(Overloaded), EvaluatorClient.from_config(config) as sync_client:
            sync_client.evaluate(CONVERSATION)
    else:
        monkeypatch.setattr("reward_kit.sdk._async_client.asyncio.sleep", no_sleep)

        async def call() -> None:
            async with AsyncEvaluatorClient.from_config(config) as async_client:
                await async_client.evaluate(CONVERSATION)

        with pytest.raises(Overloaded):
            asyncio.run(call())
    expected = documented_waits(config, retry_after=1.0)
    assert len(seen) == config.max_retries + 1
    assert len(waits) == len(expected) == 5
    for wait, (shortest, longest) in zip(waits, expected, strict=True):
        assert shortest <= wait <= longest
    # docs/sdk.md: 7.75-15.5 s of backoff in all by default; 9-16.75 s with a Retry-After: 1
    # floor (a fixed 1 s that replaced it would have been 5 s).
    total = (sum(low for low, _ in expected), sum(high for _, high in expected))
    assert total == (9.0, 16.75)
    assert total[0] <= sum(waits) <= total[1]
