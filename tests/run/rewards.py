"""Rewards for the rk run tests."""

from __future__ import annotations

from reward_kit import EvaluateResult, MetricResult, reward_function


@reward_function
def contains_answer(messages, ground_truth=None, **kwargs):
    """1.0 when the reply contains the ground truth."""
    text = messages[-1].text
    ok = str(ground_truth) in text
    return EvaluateResult(
        score=float(ok),
        reason=f"looked for {ground_truth!r}",
        metrics={"length": MetricResult(score=min(len(text) / 100, 1.0), reason="chars/100")},
    )


@reward_function(mode="batch")
def group_size(rollouts_messages, ground_truth=None, **kwargs):
    """Each sample's score is the size of the group it was scored in, over 10 (so a test sees
    that the whole prompt's samples arrived together) -- and every reply of a group is seen."""
    distinct = len({m[-1].text for m in rollouts_messages})
    return [
        EvaluateResult(
            score=len(rollouts_messages) / 10,
            metrics={"distinct": MetricResult(score=float(distinct), reason="distinct replies")},
        )
        for _ in rollouts_messages
    ]


@reward_function
def always_fails(messages, **kwargs):
    """Raises: its entries must be errors, never 0."""
    raise RuntimeError("this reward always fails")


@reward_function
def weighted(messages, weight=None, **kwargs):
    """The row's own ``weight`` field: proves other dataset fields reach the reward."""
    return float(weight)
