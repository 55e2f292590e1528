"""One reward for a dataset that mixes math and coding rows: the row's ``task`` field picks the
reward that scores it (``gsm8k_reward`` or ``humaneval_reward``).

The result keeps the part's score and reason, and reports it again as a metric named after the
task, so a run's summary shows a mean per task (``metrics.math``, ``metrics.code``) next to
the overall one. A row with an unknown ``task`` is an error, never a score of 0.
"""

from __future__ import annotations

from typing import Any

from reward_kit import EvaluateResult, InvalidRequest, Message, MetricResult, reward_function
from reward_kit.rewards import gsm8k_reward, humaneval_reward

REWARDS = {"math": gsm8k_reward, "code": humaneval_reward}


@reward_function(timeout=90)
def by_task(messages: list[Message], ground_truth: Any = None, task: str | None = None) -> Any:
    """Score with the reward of the row's ``task`` (``math`` or ``code``)."""
    if task not in REWARDS:
        raise InvalidRequest(f"task: expected one of {sorted(REWARDS)}, got {task!r}")
    part = REWARDS[task](messages, ground_truth=ground_truth)
    assert isinstance(part, EvaluateResult)  # both parts are pointwise
    summary = MetricResult(
        score=part.score, reason=part.reason or "", is_score_valid=part.is_score_valid
    )
    return EvaluateResult(
        score=part.score,
        reason=f"{task}: {part.reason}",
        is_score_valid=part.is_score_valid,
        metrics={task: summary, **{f"{task}.{name}": m for name, m in part.metrics.items()}},
    )
