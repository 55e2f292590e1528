"""The TRL rewards behind upstream's ``RewardFunction.get_trl_adapter()``.

Both follow :mod:`reward_kit.sdk.trl`: TRL's keyword call, the ``solution`` column as the
ground truth, the other dataset columns as keyword arguments, and ``None`` (logged) for a
completion that could not be scored, never 0. Imported on first use: it needs httpx.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ._function import RewardFunction
from .sdk import EvaluatorClient, TRLReward
from .sdk.trl import TRL_KEYWORDS, conversation

__all__ = ["LocalTRLReward", "RemoteTRLReward"]

logger = logging.getLogger("reward_kit")


class LocalTRLReward:
    """A TRL reward that runs a reward function here, one completion after another."""

    def __init__(
        self,
        fn: RewardFunction[Any],
        *,
        defaults: Mapping[str, Any],
        name: str,
        ground_truth_column: str = "solution",
    ) -> None:
        self.fn = fn
        self.defaults = dict(defaults)
        self.ground_truth_column = ground_truth_column
        self.__name__ = name  # TRL logs rewards/<__name__>/mean

    def __repr__(self) -> str:
        return f"LocalTRLReward({self.fn.name!r})"

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        columns = _columns(prompts, completions, kwargs)
        count = len(completions)
        truths = columns.pop(self.ground_truth_column, [None] * count)
        rewards: list[float | None] = []
        causes: dict[str, int] = {}
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            messages = conversation(prompt, completion)
            row = {**self.defaults, **{k: v[i] for k, v in columns.items()}}
            try:
                result = self.fn.invoke(messages, truths[i], row)
            except Exception as error:  # the function's own failure: this completion only
                cause = f"{type(error).__name__}: {error}"
                causes[cause] = causes.get(cause, 0) + 1
                rewards.append(None)
                continue
            assert not isinstance(result, list)  # pointwise, checked by RewardFunction
            rewards.append(result.score if result.is_score_valid else None)
        for cause, affected in causes.items():
            logger.error("%s: %d of %d rewards are None: %s", self.__name__, affected, count, cause)
        return rewards


class RemoteTRLReward(TRLReward):
    """:class:`~reward_kit.sdk.TRLReward` (one batched request per call), plus the
    RewardFunction's default keyword arguments sent as constant dataset columns."""

    def __init__(
        self, client: EvaluatorClient, *, function: str, name: str, defaults: Mapping[str, Any]
    ) -> None:
        super().__init__(client, function=function, name=name)
        self.defaults = dict(defaults)

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        count = len(completions) if isinstance(completions, Sequence) else 0
        constant = {k: [v] * count for k, v in self.defaults.items() if k not in kwargs}
        return super().__call__(prompts, completions, completion_ids, **constant, **kwargs)


def _columns(
    prompts: Sequence[Any], completions: Sequence[Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The dataset columns, checked: a wrong shape is a bug in the training script, so it
    raises instead of becoming a batch of ``None`` rewards."""
    for label, value in (("prompts", prompts), ("completions", completions)):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise TypeError(f"{label}: expected a list, got {type(value).__name__}")
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
    columns = {k: v for k, v in kwargs.items() if k not in TRL_KEYWORDS}
    for name, values in columns.items():
        if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
            raise TypeError(
                f"dataset column {name!r}: expected one value per completion (a list), "
                f"got {type(values).__name__}"
            )
        if len(values) != len(completions):
            raise ValueError(
                f"dataset column {name!r}: {len(values)} values for {len(completions)} completions"
            )
    return columns
