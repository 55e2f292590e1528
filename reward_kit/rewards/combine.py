"""Compose rewards: ``combine({fn: weight})`` makes one function whose metrics are its parts."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Mapping
from typing import Any

from .._function import RewardFunction, reward_function
from .._models import EvaluateResult, Message, MetricResult
from .._vocabulary import DEFAULT_DEADLINE

__all__ = ["combine"]


def combine(
    parts: Mapping[Any, float],
    *,
    name: str = "combined",
    normalize: bool = False,
    timeout: float | None = None,
) -> RewardFunction[Any]:
    """One reward: the weighted sum of ``parts`` (divided by the sum of |weights| with
    ``normalize``). Every keyword argument reaches each part that names it.

    Metrics: one per part (its score and reason), then the part's own metrics as
    ``part.metric``. An invalid part makes the whole score invalid; a part that raises, raises.
    Assign the result at module level to serve it (``rk-serve file.py``) in worker processes.

    >>> from reward_kit.rewards import format_reward, tag_count_reward
    >>> both = combine({format_reward: 0.5, tag_count_reward: 0.5})
    >>> both([{"role": "assistant", "content": "<think>x</think><answer>y</answer>"}]).score
    1.0
    """
    functions = _parts(parts)
    names = [fn.name for fn, _ in functions]
    if len(set(names)) != len(names):
        raise ValueError(f"combine: two parts share a name: {names}")
    total = sum(abs(w) for _, w in functions) if normalize else 1.0
    if total == 0:
        raise ValueError("combine: with normalize=True the weights cannot all be 0")
    budget = timeout or sum(fn.timeout or DEFAULT_DEADLINE for fn, _ in functions)

    merge = functools.partial(_merge, functions, total)

    if any(fn.is_async for fn, _ in functions):

        async def run_async(
            messages: list[Message], ground_truth: Any = None, **kwargs: Any
        ) -> EvaluateResult:
            async def one(fn: RewardFunction[Any]) -> Any:
                if fn.is_async:
                    return await fn.ainvoke(messages, ground_truth, kwargs)
                # A sync part must not block the event loop the async parts share.
                return await asyncio.to_thread(fn.invoke, messages, ground_truth, kwargs)

            return merge([_one(r) for r in await asyncio.gather(*(one(fn) for fn, _ in functions))])

        return reward_function(name=name, timeout=budget)(run_async)

    def run(messages: list[Message], ground_truth: Any = None, **kwargs: Any) -> EvaluateResult:
        return merge([_one(fn.invoke(messages, ground_truth, kwargs)) for fn, _ in functions])

    return reward_function(name=name, timeout=budget)(run)


def _one(value: EvaluateResult | list[EvaluateResult]) -> EvaluateResult:
    if isinstance(value, list):  # pointwise parts only (checked above): cannot happen
        raise TypeError("combine: a part returned a list of results")
    return value


def _parts(parts: Mapping[Any, float]) -> list[tuple[RewardFunction[Any], float]]:
    """``parts`` checked: pointwise reward functions with finite numeric weights."""
    if not isinstance(parts, Mapping):
        raise TypeError(
            f"combine: expected a dict {{reward function: weight}}, got {type(parts).__name__}"
        )
    functions: list[tuple[RewardFunction[Any], float]] = []
    for part, weight in parts.items():
        fn = part if isinstance(part, RewardFunction) else RewardFunction(part)
        if fn.mode != "pointwise":
            raise ValueError(f"combine: {fn.name!r} is a batch-mode function; only pointwise")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise TypeError(f"combine: the weight of {fn.name!r} must be a number")
        if not math.isfinite(weight):
            raise ValueError(f"combine: the weight of {fn.name!r} must be finite")
        functions.append((fn, float(weight)))
    if not functions:
        raise ValueError("combine: give at least one reward function")
    return functions


def _merge(
    functions: list[tuple[RewardFunction[Any], float]],
    total: float,
    results: list[EvaluateResult],
) -> EvaluateResult:
    """The combined result: the weighted sum, with each part's score and metrics."""
    metrics: dict[str, MetricResult] = {}
    score, invalid = 0.0, []
    for (fn, weight), part in zip(functions, results, strict=True):
        score += weight * part.score / total
        if not part.is_score_valid:
            invalid.append(fn.name)
        reason = f"x{weight:g}: {part.reason or ''}".strip()
        metrics[fn.name] = MetricResult(
            score=part.score, reason=reason, is_score_valid=part.is_score_valid
        )
        for key, sub in part.metrics.items():
            metrics[f"{fn.name}.{key}"] = sub
    parts_text = ", ".join(
        f"{fn.name}={r.score:.3g}" for (fn, _), r in zip(functions, results, strict=True)
    )
    if invalid:
        reason = f"invalid part(s): {', '.join(invalid)}; {parts_text}"
        return EvaluateResult(score=score, reason=reason, is_score_valid=False, metrics=metrics)
    return EvaluateResult(score=score, reason=parts_text, metrics=metrics)
