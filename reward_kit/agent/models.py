"""Upstream reward-kit 0.4's ``reward_kit.agent.models``: :class:`StepData`, the record of one
step of a multi-turn rollout that a trainer aligns ``EvaluateResult.step_outputs`` onto.

>>> StepData(system_step_index=0, observation_data=None, action_taken={"type": "text"},
...          resulting_messages_history=[{"role": "assistant", "content": "hi"}]).is_done
False
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from .._models import Message, require_finite

__all__ = ["StepData"]


class StepData(BaseModel):
    """One step of a rollout: what the policy saw and did, and the rewards given for it.

    ``base_reward`` comes from the reward function's ``StepOutput`` for this step;
    ``advantage`` and ``return_to_go`` are filled in by the trainer (e.g. GiGPO).
    Unknown fields are kept.
    """

    model_config = ConfigDict(extra="allow")

    system_step_index: int
    observation_data: Any
    action_taken: dict[str, Any]
    raw_policy_output: str | None = None
    resulting_messages_history: list[Message]
    policy_logprobs: dict[str, Any] | None = None
    policy_value_estimate: float | None = None
    is_done: bool = False
    step_info: dict[str, Any] = Field(default_factory=dict)
    base_reward: float | None = None
    advantage: float | None = None
    return_to_go: float | None = None

    @field_validator("policy_value_estimate", "base_reward", "advantage", "return_to_go")
    @classmethod
    def _finite(cls, value: float | None, info: ValidationInfo) -> float | None:
        # NaN would poison the advantage computation it feeds, as in EvaluateResult.
        return None if value is None else require_finite(value, info.field_name or "value")
