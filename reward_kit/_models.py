"""Data models, wire-compatible with Fireworks reward-kit 0.4 (field names and defaults)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from typing_extensions import Self

__all__ = [
    "EvaluateResult",
    "FunctionCall",
    "Message",
    "MetricResult",
    "StepOutput",
    "ToolCall",
    "require_finite",
]


class _DictAccess:
    """reward-kit results could be read like dicts (``result["score"]``, iterating keys);
    keep that working, even though it replaces pydantic's (name, value) iteration."""

    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields:  # type: ignore[attr-defined]
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields  # type: ignore[attr-defined]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self else default

    def keys(self) -> list[str]:
        return list(type(self).model_fields)  # type: ignore[attr-defined]

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


class _MessageAccess(_DictAccess):
    """Read a message (or a tool call in it) like the dict it came from: ``m["content"]``,
    ``m.get("name")``, ``"tool_calls" in m``, ``dict(m)``, as well as by attribute.

    Upstream reward-kit handed raw dicts to functions whose ``messages`` were not annotated
    ``List[Message]``, so code written for it indexes messages. The keys are those of that
    dict: the fields that were given (even as None) or have a non-None default, plus unknown
    extra fields; so ``"tool_calls" in m`` is false for a plain text message, as for the dict.
    Read-only: a message is not mutated through ``m[key] = ...``.
    """

    def keys(self) -> list[str]:
        given = self.model_fields_set  # type: ignore[attr-defined]
        fields = [
            k
            for k in type(self).model_fields  # type: ignore[attr-defined]
            if k in given or getattr(self, k) is not None
        ]
        return fields + list(self.__pydantic_extra__ or ())  # type: ignore[attr-defined]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __getitem__(self, key: str) -> Any:
        if key in self:
            return getattr(self, key)
        raise KeyError(key)

    def __len__(self) -> int:
        return len(self.keys())


class FunctionCall(_MessageAccess, BaseModel):  # type: ignore[misc]  # dict-like __iter__
    """The function part of an OpenAI tool call; ``arguments`` is usually a JSON string."""

    model_config = ConfigDict(extra="allow")

    name: str
    arguments: str | dict[str, Any] = ""


class ToolCall(_MessageAccess, BaseModel):  # type: ignore[misc]
    """An OpenAI chat tool call."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    type: str = "function"
    function: FunctionCall


class Message(_MessageAccess, BaseModel):  # type: ignore[misc]
    """One chat message in OpenAI format. Unknown fields (``reasoning_content``...) are kept.
    It reads like a dict too (``m["content"]``, ``m.get("role")``), see ``_MessageAccess``.

    >>> m = Message(role="assistant", content="42")
    >>> m.text, m["content"], "tool_calls" in m
    ('42', '42', False)
    """

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = ""
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        # Upstream's Message.model_validate says "Role is required" for a dict without one;
        # code matching that text keeps working. The constructor keeps pydantic's wording.
        if isinstance(obj, dict) and "role" not in obj:
            missing = PydanticCustomError("missing", "Role is required")
            raise ValidationError.from_exception_data(
                cls.__name__, [{"type": missing, "loc": ("role",), "input": obj}]
            )
        return super().model_validate(obj, *args, **kwargs)

    @property
    def text(self) -> str:
        """The text of the message: ``content`` itself, or its text parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(
            str(part.get("text", "")) for part in self.content if part.get("type") == "text"
        )


class MetricResult(_DictAccess, BaseModel):  # type: ignore[misc]  # dict-like __iter__
    """One named component of a reward, with the reason it was given."""

    score: float
    reason: str = ""
    is_score_valid: bool = True

    @field_validator("score")
    @classmethod
    def _finite(cls, value: float) -> float:
        return require_finite(value, "score")


class StepOutput(_DictAccess, BaseModel):  # type: ignore[misc]
    """A per-step reward for multi-turn rollouts (maps to an assistant turn)."""

    step_index: int | str
    base_reward: float
    metrics: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None

    @field_validator("base_reward")
    @classmethod
    def _finite(cls, value: float) -> float:
        return require_finite(value, "base_reward")


class EvaluateResult(_DictAccess, BaseModel):  # type: ignore[misc]
    """What a reward function returns: a score, why, and the metrics that explain it.

    >>> EvaluateResult(score=1.0, reason="exact match").score
    1.0
    """

    score: float
    reason: str | None = None
    is_score_valid: bool = True
    metrics: dict[str, MetricResult] = Field(default_factory=dict)
    step_outputs: list[StepOutput] | None = None
    error: str | None = None

    @field_validator("score")
    @classmethod
    def _finite(cls, value: float) -> float:
        return require_finite(value, "score")


def require_finite(value: float, name: str) -> float:
    # NaN and infinities are not JSON and poison a training batch's mean: reject them (in
    # metrics too) rather than let them travel as a silent null marked valid.
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value
