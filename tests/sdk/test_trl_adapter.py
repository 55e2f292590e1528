"""The TRL reward adapter, called the way TRL calls it, against a real evaluator."""

from __future__ import annotations

import asyncio
import json
import pickle
from typing import Any

import pytest

from reward_kit import AuthenticationError, EvaluatorUnavailable, PermissionDenied, UnknownFunction
from reward_kit.sdk import EvaluatorClient, SyncTRLReward, TRLReward, trl_reward, trl_reward_sync

from ..conftest import LiveServer, free_port
from .conftest import KEY


class Hooks:
    """Stand-ins for TRL's log_metric / log_extra bound methods; they record what they got."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.extra: dict[str, list[Any]] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.metrics[name] = value

    def log_extra(self, column: str, values: list[Any]) -> None:
        self.extra[column] = values


def call(reward: TRLReward | SyncTRLReward, **kwargs: Any) -> list[float | None]:
    """Call the reward exactly as GRPOTrainer does: keywords only, TRL's extras included."""
    kwargs.setdefault("completion_ids", [[1, 2]] * len(kwargs["completions"]))
    kwargs.setdefault("trainer_state", object())
    if isinstance(reward, TRLReward):

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


def test_columns_limits_what_is_sent_and_a_missing_one_is_an_error(server: LiveServer) -> None:
    hooks = Hooks()
    reward = trl_reward(server.url, function="echo", auth=KEY, columns=["level"])
    call(
        reward, prompts=["p"], completions=["c"], level=[2], noise=["x"], log_extra=hooks.log_extra
    )
    assert json.loads(hooks.extra["echo/reason"][0])["kwargs"] == {"level": 2}
    with pytest.raises(KeyError, match="level"):
        call(reward, prompts=["p"], completions=["c"])


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

    async def used_async() -> TRLReward:
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
def test_configuration_errors_always_raise(
    server: LiveServer, auth: str | None, function: str, error: type[Exception]
) -> None:
    # A wrong key or function never heals: returning None for a whole run would hide it.
    reward = trl_reward(server.url, function=function, auth=auth)
    with pytest.raises(error):
        call(reward, prompts=["p"], completions=["a"])


def test_rejects_a_bad_on_error() -> None:
    with pytest.raises(ValueError, match="on_error"):
        trl_reward("http://127.0.0.1:1", function="f", on_error="zero")  # type: ignore[arg-type]
