"""@reward_function: bare and with options, sync and async, coercions, signature filtering."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel

from reward_kit import EvaluateResult, InvalidRequest, Message, RewardFunction, reward_function

ASSISTANT = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def test_bare_and_with_options() -> None:
    @reward_function
    def bare(messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
        return 1.0

    @reward_function(name="named", timeout=3, requirements=["sympy"], isolation="thread")
    def options(messages, **kwargs):  # type: ignore[no-untyped-def]
        return 0.5

    assert isinstance(bare, RewardFunction)
    assert bare.name == "bare"
    assert bare.isolation == "process"
    assert (options.name, options.timeout, options.requirements, options.isolation) == (
        "named",
        3.0,
        ("sympy",),
        "thread",
    )
    assert options(ASSISTANT).score == 0.5
    assert bare.describe()["mode"] == "pointwise"


def test_messages_always_arrive_as_message_objects() -> None:
    seen: list[Any] = []

    @reward_function
    def f(messages, **kwargs):  # type: ignore[no-untyped-def]
        seen.extend(messages)
        return 1

    f([ASSISTANT[0], Message(role="assistant", content="x")])
    assert all(isinstance(m, Message) for m in seen)
    assert seen[1].content == "x"


class ForeignMessage(BaseModel):
    """Another package's message model (upstream reward-kit's, OpenAI's...): not our Message."""

    role: str
    content: str | None = None
    reasoning_content: str | None = None


@dataclasses.dataclass
class DataclassMessage:
    role: str
    content: str


def test_messages_from_other_packages_arrive_as_our_message_objects() -> None:
    seen: list[Any] = []

    @reward_function(mode="batch")
    def group(rollouts_messages, **kwargs):  # type: ignore[no-untyped-def]
        seen.extend(m for rollout in rollouts_messages for m in rollout)
        return [1] * len(rollouts_messages)

    @reward_function
    def f(messages, **kwargs):  # type: ignore[no-untyped-def]
        seen.extend(messages)
        return 1

    foreign = ForeignMessage(role="assistant", content="4", reasoning_content="2+2")
    f([ASSISTANT[0], foreign, DataclassMessage(role="user", content="ok?")])
    group([[foreign], (ASSISTANT[0], DataclassMessage(role="assistant", content="x"))])
    assert all(type(m) is Message for m in seen)
    assert [m.content for m in seen] == ["2+2?", "4", "ok?", "4", "2+2?", "x"]
    assert seen[1].reasoning_content == "2+2"  # unknown fields are kept
    with pytest.raises(InvalidRequest, match=r"messages\.0\.role: Field required"):
        f([ForeignMessage.model_construct(content="no role")])
    with pytest.raises(InvalidRequest, match=r"messages\.0: Input should be a valid dict"):
        f([object()])


def test_keyword_arguments_are_filtered_to_what_the_function_names() -> None:
    @reward_function
    def strict(messages, ground_truth=None, *, scale=1.0):  # type: ignore[no-untyped-def]
        return scale

    @reward_function
    def no_ground_truth(messages):  # type: ignore[no-untyped-def]
        return 0.25

    assert strict(ASSISTANT, "4", scale=0.5, unknown_column=[1]).score == 0.5
    assert no_ground_truth(ASSISTANT, ground_truth="4", extra=1).score == 0.25
    assert strict(messages=ASSISTANT, ground_truth="x").score == 1.0


@pytest.mark.parametrize(
    ("returned", "score"),
    [(True, 1.0), (False, 0.0), (3, 3.0), (0.25, 0.25), ({"score": 0.5, "reason": "r"}, 0.5)],
)
def test_return_values_are_coerced(returned: Any, score: float) -> None:
    @reward_function
    def f(messages, **kwargs):  # type: ignore[no-untyped-def]
        return returned

    assert f(ASSISTANT).score == score


@pytest.mark.parametrize(
    ("returned", "error", "match"),
    [
        ("text", TypeError, "'bad' returned str"),
        (None, TypeError, "'bad' returned NoneType"),
        (
            {"reason": "no score"},
            TypeError,
            "'bad' returned a dict that is not an EvaluateResult: score: Field required",
        ),
        (
            {"score": "high"},
            TypeError,
            "'bad' returned a dict .*score: Input should be a valid number",
        ),
        (
            {"score": 1, "metrics": {"m": 0.5}},
            TypeError,
            r"'bad' returned a dict .*metrics\.m: Input should be a valid dictionary",
        ),
        (ForeignMessage(role="x"), TypeError, r"'bad' returned a ForeignMessage .*score: Field"),
        (float("nan"), ValueError, "'bad' returned an invalid score"),
    ],
)
def test_bad_return_values_name_the_function(returned: Any, error: type, match: str) -> None:
    @reward_function
    def bad(messages, **kwargs):  # type: ignore[no-untyped-def]
        return returned

    with pytest.raises(error, match=match):
        bad(ASSISTANT)
    with pytest.raises(error, match=match):  # the service's path says the same
        bad.invoke_json(ASSISTANT)


@pytest.mark.parametrize(
    "returned",
    [True, False, 0, 3, -(2**53), 2**60, 0.25, -1e300, 1e-320, {"score": 0.5, "reason": "r"}],
)
def test_the_services_json_result_is_the_models_dump(returned: Any) -> None:
    @reward_function
    def f(messages, **kwargs):  # type: ignore[no-untyped-def]
        return returned

    expected = f(ASSISTANT).model_dump(mode="json")
    assert f.invoke_json(ASSISTANT) == expected
    assert asyncio.run(f.ainvoke_json(ASSISTANT)) == expected


def test_direct_calls_raise_the_functions_own_exceptions() -> None:
    @reward_function
    def boom(messages, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        boom(ASSISTANT)


def test_invalid_messages_name_the_field() -> None:
    @reward_function
    def f(messages, **kwargs):  # type: ignore[no-untyped-def]
        return 1

    with pytest.raises(InvalidRequest, match=r"messages\.1\.role: Field required"):
        f([ASSISTANT[0], {"content": "no role"}])
    with pytest.raises(InvalidRequest, match="expected a list of messages"):
        f("just text")


def test_async_functions() -> None:
    @reward_function
    async def slow(messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        return {"score": float(messages[-1].text == ground_truth)}

    assert slow.is_async
    assert slow.isolation == "thread"  # its own loop thread, never the server's loop
    result = asyncio.run(slow(ASSISTANT, "4"))
    assert isinstance(result, EvaluateResult)
    assert result.score == 1.0
    assert slow.invoke(ASSISTANT, "4").score == 1.0  # type: ignore[union-attr]


def test_batch_mode_gets_all_rollouts_and_returns_one_result_each() -> None:
    @reward_function(mode="batch")
    def relative(rollouts_messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
        lengths = [len(m[-1].text) for m in rollouts_messages]
        mean = sum(lengths) / len(lengths)
        return [length - mean for length in lengths]

    rollouts = [[{"role": "assistant", "content": "a" * n}] for n in (1, 2, 3)]
    assert [r.score for r in relative(rollouts, ground_truth=[None] * 3)] == [-1.0, 0.0, 1.0]

    @reward_function(mode="batch")
    def short(rollouts_messages, **kwargs):  # type: ignore[no-untyped-def]
        return [1.0]

    with pytest.raises(ValueError, match="returned 1 results for 3 rollouts"):
        short(rollouts)


def test_setup_runs_once_and_reaches_the_function() -> None:
    calls: list[int] = []

    def load() -> dict[str, int]:
        calls.append(1)
        return {"offset": 2}

    @reward_function(setup=load)
    def f(messages, resources, **kwargs):  # type: ignore[no-untyped-def]
        return resources["offset"]

    assert f(ASSISTANT).score == 2
    assert f(ASSISTANT).score == 2
    assert calls == [1]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": 0}, "timeout must be a positive"),
        ({"timeout": "5"}, "timeout must be a positive"),
        ({"isolation": "vm"}, "isolation must be"),
        ({"mode": "groupwise"}, "mode must be"),
        ({"name": "has space"}, "must start with a letter"),
        ({"requirements": "sympy"}, "requirements must be a list"),
        ({"setup": lambda: 1}, "no 'resources' parameter"),
        ({"metrics": "exact"}, "metrics must be a list of metric names"),
        ({"metrics": ["exact", ""]}, "metrics must be a list of metric names"),
        ({"metrics": ["exact", "exact"]}, "'exact' listed more than once"),
        ({"metrics": ["reward_kit_failed"]}, "reward-kit's own flag"),
        ({"metrics": ["exact", "score"]}, "'score' would overwrite the score verl and OpenRLHF"),
        ({"metrics": ["reward"]}, "'reward' would overwrite the reward OpenRLHF trains on"),
    ],
)
def test_options_are_checked_at_decoration(options: dict[str, Any], match: str) -> None:
    def f(messages, **kw):  # type: ignore[no-untyped-def]
        return 1

    def g(messages):  # type: ignore[no-untyped-def]
        return 1

    with pytest.raises((TypeError, ValueError), match=match):
        reward_function(**options)(g if "setup" in options else f)


def test_function_without_positional_messages_is_rejected() -> None:
    with pytest.raises(TypeError, match="first positional parameter"):

        @reward_function
        def f(*, messages):  # type: ignore[no-untyped-def]
            return 1


def test_declared_metrics_are_described() -> None:
    @reward_function(metrics=("exact", "length"))
    def f(messages, **kw):  # type: ignore[no-untyped-def]
        return 1

    assert f.metrics == ("exact", "length")
    assert f.describe()["metrics"] == ["exact", "length"]
    assert reward_function(f.func).describe()["metrics"] is None
