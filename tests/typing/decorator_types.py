"""Checked by mypy in tests/test_typing.py: what type checkers see through @reward_function."""

from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

from reward_kit import EvaluateResult, Message, RewardFunction, reward_function


@reward_function
def sync_fn(messages: list[Message], ground_truth: str | None = None) -> float:
    return 1.0


@reward_function(timeout=3, isolation="thread")
async def async_fn(messages: list[Message]) -> float:
    return 1.0


@reward_function(mode="batch")
def batch_fn(rollouts_messages: list[list[Message]]) -> list[float]:
    return [1.0]


@reward_function(mode="batch")
async def async_batch_fn(rollouts_messages: list[list[Message]]) -> list[float]:
    return [1.0]


assert_type(sync_fn, RewardFunction[EvaluateResult])
assert_type(sync_fn([], "4"), EvaluateResult)
assert_type(batch_fn([]), list[EvaluateResult])


async def awaited() -> None:
    assert_type(async_fn([]), Coroutine[Any, Any, EvaluateResult])  # type: ignore[unused-coroutine]
    assert_type(await async_fn([]), EvaluateResult)
    assert_type(await async_batch_fn([]), list[EvaluateResult])
