"""The TRL reward adapter, called the way TRL calls it, against a real evaluator."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reward_kit import (
    AuthenticationError,
    EvaluatorUnavailable,
    InvalidResponse,
    PermissionDenied,
    RewardKitError,
    UnknownFunction,
)
from reward_kit.sdk import (
    AsyncEvaluatorClient,
    AsyncTRLReward,
    EvaluatorClient,
    TRLReward,
    trl_reward,
    trl_reward_sync,
)
from reward_kit.sdk._core import ClientConfig

from ..conftest import LiveServer, free_port
from .conftest import KEY, AsyncCountingTransport, CountingTransport


class Hooks:
    """Stand-ins for TRL's log_metric / log_extra bound methods; they record what they got."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.extra: dict[str, list[Any]] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.metrics[name] = value

    def log_extra(self, column: str, values: list[Any]) -> None:
        self.extra[column] = values


def call(reward: AsyncTRLReward | TRLReward, **kwargs: Any) -> list[float | None]:
    """Call the reward exactly as GRPOTrainer does: keywords only, TRL's extras included."""
    kwargs.setdefault("completion_ids", [[1, 2]] * len(kwargs["completions"]))
    kwargs.setdefault("trainer_state", object())
    if isinstance(reward, AsyncTRLReward):

        async def run() -> list[float | None]:
            try:
                return await reward(**kwargs)
            finally:  # asyncio.run() closes the loop; connections must be closed before it
                await reward.aclose()

        return asyncio.run(run())
    try:
        return reward(**kwargs)
    finally:
        reward.close()


STANDARD = {
    "prompts": ["1+1?", "2+2?", "3+3?", "4+4?"],
    "completions": ["2", "four", "6", "8"],
    "solution": ["2", "4", "6", "8"],
    "behaviour": ["good", "raise", "invalid", "good"],
}


@pytest.mark.parametrize("factory", [trl_reward, trl_reward_sync])
def test_standard_format_one_request_none_for_failures(server: LiveServer, factory: Any) -> None:
    hooks = Hooks()
    reward = factory(server.url, function="echo", auth=KEY)
    rewards = call(reward, **STANDARD, log_metric=hooks.log_metric, log_extra=hooks.log_extra)
    assert rewards == [0.01, None, None, 0.01]  # an error and an invalid score are None, not 0
    assert reward.__name__ == "echo"
    assert hooks.metrics["echo/has_digit"] == 1.0
    assert hooks.metrics["echo/failed"] == 0.5
    reasons = hooks.extra["echo/reason"]
    assert reasons[1].startswith("error function_error: ValueError")
    assert reasons[2].startswith("invalid score")
    got = json.loads(reasons[0])
    assert got["roles"] == ["user", "assistant"]
    assert got["texts"] == ["1+1?", "2"]
    assert got["ground_truth"] == "2"
    # TRL's own keywords never reach the evaluator; other dataset columns do.
    assert got["kwargs"] == {}  # `behaviour` is a named parameter of echo, so not in **kwargs


def test_conversational_format_and_dataset_columns(server: LiveServer) -> None:
    prompts = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]]
    completions = [[{"role": "assistant", "content": "4"}]]
    hooks = Hooks()
    reward = trl_reward(server.url, function="echo", auth=KEY, ground_truth_column="answer")
    rewards = call(
        reward,
        prompts=prompts,
        completions=completions,
        answer=[{"value": 4}],
        difficulty=["easy"],
        log_extra=hooks.log_extra,
    )
    assert rewards == [0.01]
    got = json.loads(hooks.extra["echo/reason"][0])
    assert got["roles"] == ["system", "user", "assistant"]
    assert got["ground_truth"] == {"value": 4}
    assert got["kwargs"] == {"difficulty": "easy"}


def test_columns_limits_what_is_sent_and_a_missing_one_is_an_error(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = Hooks()
    reward = trl_reward(server.url, function="echo", auth=KEY, columns=["level"])
    call(
        reward, prompts=["p"], completions=["c"], level=[2], noise=["x"], log_extra=hooks.log_extra
    )
    assert json.loads(hooks.extra["echo/reason"][0])["kwargs"] == {"level": 2}
    with caplog.at_level(logging.ERROR, logger="reward_kit.sdk"):
        assert call(reward, prompts=["p"], completions=["c"], log_extra=hooks.log_extra) == [None]
    assert "KeyError" in caplog.text
    assert "'level'" in caplog.text
    assert hooks.extra["echo/reason"][0].startswith("not scored: KeyError")
    loud = trl_reward(server.url, function="echo", auth=KEY, columns=["level"], on_error="raise")
    with pytest.raises(KeyError, match="level"):
        call(loud, prompts=["p"], completions=["c"])


def test_name_overrides_the_metric_prefix(server: LiveServer) -> None:
    reward = trl_reward(server.url, function="echo", auth=KEY, name="remote_echo")
    hooks = Hooks()
    call(reward, prompts=["p"], completions=["c1"], log_metric=hooks.log_metric)
    assert reward.__name__ == "remote_echo"
    assert "remote_echo/length" in hooks.metrics


def test_pickles_before_and_after_use(server: LiveServer) -> None:
    with EvaluatorClient(server.url, auth=KEY) as client:
        reward = trl_reward_sync(client, function="echo")  # takes the client's settings
    clone = pickle.loads(pickle.dumps(reward))
    assert clone(prompts=["p"], completions=["abc"]) == [0.03]
    again = pickle.loads(pickle.dumps(clone))  # a used one holds a live client: still pickles
    assert call(again, prompts=["p"], completions=["abcd"]) == [0.04]
    clone.close()

    async def used_async() -> AsyncTRLReward:
        reward = trl_reward(server.url, function="echo", auth=KEY)
        await reward(prompts=["p"], completions=["ab"])
        copy = pickle.loads(pickle.dumps(reward))
        await reward.aclose()
        return copy

    assert call(asyncio.run(used_async()), prompts=["p"], completions=["a"]) == [0.01]


def test_the_async_reward_opens_a_client_per_event_loop(server: LiveServer) -> None:
    reward = trl_reward(server.url, function="echo", auth=KEY)

    async def twice() -> list[float | None]:
        first = await reward(prompts=["p"], completions=["ab"])
        client = reward._client()
        second = await reward(prompts=["p"], completions=["abc"])
        assert reward._client() is client  # one loop (TRL's daemon loop): one client
        await reward.aclose()
        return first + second

    assert asyncio.run(twice()) == [0.02, 0.03]
    assert asyncio.run(twice()) == [0.02, 0.03]  # a fresh loop gets a fresh client


@pytest.mark.parametrize("factory", [trl_reward, trl_reward_sync])
def test_unreachable_evaluator_gives_none_or_raises(factory: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with EvaluatorClient(url, max_retries=0) as client:
        quiet = factory(client, function="echo")
        loud = factory(client, function="echo", on_error="raise")
    assert call(quiet, prompts=["p", "q"], completions=["a", "b"]) == [None, None]
    with pytest.raises(EvaluatorUnavailable):
        call(loud, prompts=["p"], completions=["a"])


@pytest.mark.parametrize(
    ("auth", "function", "error"),
    [
        ("wrong-key-0123456789abcdef", "echo", PermissionDenied),
        (None, "echo", AuthenticationError),
        (KEY, "missing", UnknownFunction),
    ],
)
@pytest.mark.parametrize("factory", [trl_reward, trl_reward_sync])
def test_configuration_errors_are_none_and_logged_or_raised(
    server: LiveServer,
    auth: str | None,
    function: str,
    error: type[Exception],
    factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # on_error="none" never raises, but a wrong key or function never heals: it is logged at
    # ERROR with a hint, and on_error="raise" is the setting that stops training on it.
    quiet = factory(server.url, function=function, auth=auth)
    with caplog.at_level(logging.ERROR, logger="reward_kit.sdk"):
        assert call(quiet, prompts=["p", "q"], completions=["a", "b"]) == [None, None]
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.__name__ in record.getMessage()
    assert "2 of 2" in record.getMessage()
    assert "on_error='raise'" in record.getMessage()
    loud = factory(server.url, function=function, auth=auth, on_error="raise")
    with pytest.raises(error):
        call(loud, prompts=["p"], completions=["a"])


def test_rejects_a_bad_on_error() -> None:
    with pytest.raises(ValueError, match="on_error"):
        trl_reward("http://127.0.0.1:1", function="f", on_error="zero")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_one_batched_request_per_call(server: LiveServer, mode: str) -> None:
    transport: CountingTransport | AsyncCountingTransport
    if mode == "sync":
        transport = CountingTransport()
        reward: Any = trl_reward_sync(
            EvaluatorClient(server.url, auth=KEY, transport=transport), function="echo"
        )
    else:
        transport = AsyncCountingTransport()
        reward = trl_reward(
            AsyncEvaluatorClient(server.url, auth=KEY, transport=transport), function="echo"
        )
    completions = [f"{i:02d}" for i in range(16)]
    rewards = call(reward, prompts=["p"] * 16, completions=completions, solution=["x"] * 16)
    assert rewards == [0.02] * 16
    assert transport.paths == ["/batch_evaluate"]  # 16 completions, one request


@pytest.mark.parametrize("factory", [trl_reward, trl_reward_sync])
def test_pickles_after_use_with_a_custom_transport(server: LiveServer, factory: Any) -> None:
    # An httpx transport holds an SSLContext and sockets: it is left behind by pickling, and
    # the copy (in TRL's other process) uses httpx's default transport.
    transport = CountingTransport() if factory is trl_reward_sync else AsyncCountingTransport()
    client_class = EvaluatorClient if factory is trl_reward_sync else AsyncEvaluatorClient
    reward = factory(client_class(server.url, auth=KEY, transport=transport), function="echo")
    if factory is trl_reward_sync:
        assert reward(prompts=["p"], completions=["abc"]) == [0.03]
        clone = pickle.loads(pickle.dumps(reward))
        reward.close()
    else:

        async def use_then_pickle() -> AsyncTRLReward:
            assert await reward(prompts=["p"], completions=["abc"]) == [0.03]
            copy: AsyncTRLReward = pickle.loads(pickle.dumps(reward))
            await reward.aclose()
            return copy

        clone = asyncio.run(use_then_pickle())
    assert transport.paths == ["/batch_evaluate"]
    assert clone.config.transport is None
    assert reward.config.transport is transport  # the original keeps it
    assert call(clone, prompts=["p"], completions=["abcd"]) == [0.04]
    assert transport.paths == ["/batch_evaluate"]  # the copy did not use it


# -- on_error="none" never raises: every failure a healthy server cannot produce on demand ----


def ok_batch(request: httpx.Request) -> httpx.Response:
    """Scores each item len(last message) / 100, like the echo reward."""
    items = json.loads(request.content)["items"]
    results = [
        {
            "index": i,
            "status": "ok",
            "result": {"score": len(item["messages"][-1]["content"]) / 100, "metrics": {}},
        }
        for i, item in enumerate(items)
    ]
    return httpx.Response(200, json={"results": results})


def mocked(
    mode: str, handler: Callable[[httpx.Request], httpx.Response], **options: Any
) -> AsyncTRLReward | TRLReward:
    config = ClientConfig(
        url="http://evaluator.test", transport=httpx.MockTransport(handler), max_retries=0
    )
    factory = trl_reward_sync if mode == "sync" else trl_reward
    return factory(config, function="echo", **options)  # type: ignore[arg-type]


FAILURES = [
    # a proxy's bare 500, without reward-kit's error body
    pytest.param(lambda r: httpx.Response(500, text="oops"), RewardKitError, "HTTP 500", id="500"),
    pytest.param(
        lambda r: httpx.Response(200, json={"results": []}),
        InvalidResponse,
        "answered 0 results for 2 items",
        id="malformed-batch",
    ),
    pytest.param(
        lambda r: httpx.Response(200, text="<html>"), InvalidResponse, "not JSON", id="not-json"
    ),
    pytest.param(lambda r: httpx.Response(401), AuthenticationError, "on_error='raise'", id="401"),
    pytest.param(lambda r: httpx.Response(403), PermissionDenied, "on_error='raise'", id="403"),
    pytest.param(
        lambda r: httpx.Response(
            404, json={"error": {"code": "unknown_function", "message": "no echo"}}
        ),
        UnknownFunction,
        "no echo",
        id="404",
    ),
    pytest.param(lambda r: httpx.Response(503), EvaluatorUnavailable, "HTTP 503", id="503"),
]


@pytest.mark.parametrize(("handler", "error", "needle"), FAILURES)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_whole_call_failure_is_none_and_logged_once_or_raised(
    mode: str,
    handler: Callable[[httpx.Request], httpx.Response],
    error: type[Exception],
    needle: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = Hooks()
    quiet = mocked(mode, handler)
    with caplog.at_level(logging.ERROR, logger="reward_kit.sdk"):
        rewards = call(
            quiet,
            prompts=["p", "q"],
            completions=["a", "b"],
            log_metric=hooks.log_metric,
            log_extra=hooks.log_extra,
        )
    assert rewards == [None, None]
    (record,) = caplog.records  # once per distinct cause per call, not once per item
    assert record.levelno == logging.ERROR
    assert needle in record.getMessage()
    assert error.__name__ in record.getMessage()
    assert hooks.metrics["echo/failed"] == 1.0
    assert all(reason.startswith("not scored:") for reason in hooks.extra["echo/reason"])
    with pytest.raises(error, match=None if "on_error" in needle else needle):
        call(mocked(mode, handler, on_error="raise"), prompts=["p", "q"], completions=["a", "b"])


class NotJson:
    def __repr__(self) -> str:
        return "NotJson()"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_column_value_that_is_not_json_fails_only_its_item(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.extend(item["kwargs"]["row"] for item in json.loads(request.content)["items"])
        return ok_batch(request)

    hooks = Hooks()
    columns = {
        "row": [0, 1, 2, 3],
        "when": ["x", NotJson(), "y", NotJson()],
        "solution": ["a", "b", {1, 2}, "c"],  # a set is not JSON either
    }
    with caplog.at_level(logging.ERROR, logger="reward_kit.sdk"):
        rewards = call(
            mocked(mode, handler),
            prompts=["p"] * 4,
            completions=["a", "bb", "ccc", "dddd"],
            **columns,
            log_metric=hooks.log_metric,
            log_extra=hooks.log_extra,
        )
    assert rewards == [0.01, None, None, None]
    assert sent == [0]  # the others were never sent, and no column was silently dropped
    messages = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert len(messages) == 2  # one per distinct cause
    assert "2 of 4 rewards are None: dataset column 'when' is not JSON-serializable" in messages[1]
    assert "1 of 4 rewards are None: dataset column 'solution' (the ground truth)" in messages[0]
    assert hooks.extra["echo/reason"][1].startswith("not scored: dataset column 'when'")
    with pytest.raises(TypeError, match="completion 1: dataset column 'when'"):
        call(
            mocked(mode, handler, on_error="raise"),
            prompts=["p"] * 4,
            completions=["a", "bb", "ccc", "dddd"],
            **columns,
        )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_numpy_like_columns_are_still_sent(mode: str) -> None:
    class Array:  # what datasets hands over for array columns: has .tolist()
        def tolist(self) -> list[int]:
            return [1, 2]

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["items"][0]["kwargs"]["vec"] == [1, 2]
        return ok_batch(request)

    assert call(mocked(mode, handler), prompts=["p"], completions=["ab"], vec=[Array()]) == [0.02]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_item_failures_are_logged_once_per_call(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        failed = {"status": "error", "error": {"code": "function_error", "message": "boom"}}
        results = [{"index": 0, **failed}, {"index": 1, **failed}]
        return httpx.Response(200, json={"results": results})

    with caplog.at_level(logging.WARNING, logger="reward_kit.sdk"):
        assert call(mocked(mode, handler), prompts=["p", "q"], completions=["a", "b"]) == [
            None,
            None,
        ]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "2 of 2 items failed on the evaluator" in record.getMessage()
    assert "function_error x2" in record.getMessage()


CALLER_BUGS = [
    pytest.param({"prompts": ["p"], "completions": ["a", "b"]}, ValueError,
                 "1 prompts for 2 completions", id="length-mismatch"),
    pytest.param({"prompts": "p", "completions": ["a"]}, TypeError,
                 "prompts: expected a list, got str", id="prompts-a-string"),
    pytest.param({"prompts": ["p"], "completions": {"a": 1}}, TypeError,
                 "completions: expected a list, got dict", id="completions-a-dict"),
    pytest.param({"prompts": ["p", "q"], "completions": ["a", 7]}, TypeError,
                 "completion 1: expected a string or a list of messages, got int", id="int"),
    pytest.param({"prompts": ["p", "q"], "completions": ["a", "b"], "solution": ["x"]},
                 ValueError, "dataset column 'solution': 1 values for 2 completions",
                 id="short-ground-truth-column"),
    pytest.param({"prompts": ["p", "q"], "completions": ["a", "b"], "level": [1, 2, 3]},
                 ValueError, "dataset column 'level': 3 values for 2 completions",
                 id="long-column"),
    pytest.param({"prompts": ["p", "q"], "completions": ["a", "b"], "level": 3}, TypeError,
                 "dataset column 'level': expected one value per completion", id="scalar"),
]  # fmt: skip


@pytest.mark.parametrize(("call_kwargs", "error", "message"), CALLER_BUGS)
@pytest.mark.parametrize("on_error", ["none", "raise"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_caller_bugs_raise_whatever_on_error_says(
    mode: str, on_error: str, call_kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    # A bug in the training script is not an evaluator failure: None rewards would hide it
    # for a whole run. Nothing is sent.
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return ok_batch(request)

    with pytest.raises(error, match=message):
        call(mocked(mode, handler, on_error=on_error), **{"completion_ids": None, **call_kwargs})
    assert sent == []


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_trainer_keywords_are_not_checked_as_columns(mode: str) -> None:
    hooks = Hooks()
    rewards = call(
        mocked(mode, ok_batch),
        prompts=["p", "q"],
        completions=["a", "bb"],
        completion_ids=[[1], [2, 3]],
        trainer_state=object(),
        log_metric=hooks.log_metric,
        log_extra=hooks.log_extra,
    )
    assert rewards == [0.01, 0.02]


def test_the_old_sync_name_still_works_with_a_warning() -> None:
    import reward_kit.sdk as sdk

    with pytest.deprecated_call(match="SyncTRLReward is now TRLReward"):
        old = sdk.SyncTRLReward  # type: ignore[attr-defined]
    assert old is TRLReward
    assert not asyncio.iscoroutinefunction(TRLReward.__call__)
    assert asyncio.iscoroutinefunction(AsyncTRLReward.__call__)
