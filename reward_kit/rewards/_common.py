"""Helpers shared by the built-in rewards: the text to score, and result builders."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._errors import InvalidRequest
from .._models import EvaluateResult, Message, MetricResult

__all__ = [
    "answer_span",
    "clip",
    "completion",
    "invalid",
    "last_boxed",
    "metric",
    "result",
    "short",
]

_BOXED = re.compile(r"\\boxed\s*\{")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def completion(messages: Sequence[Message]) -> Message:
    """The message being scored: the last assistant message."""
    for message in reversed(messages):
        if message.role == "assistant":
            return message
    raise InvalidRequest("messages: no assistant message to score")


def metric(score: float, reason: str, *, valid: bool = True) -> MetricResult:
    return MetricResult(score=float(score), reason=reason, is_score_valid=valid)


def result(score: float, reason: str, metrics: dict[str, MetricResult]) -> EvaluateResult:
    return EvaluateResult(score=float(score), reason=reason, metrics=metrics)


def invalid(reason: str, metrics: dict[str, MetricResult] | None = None) -> EvaluateResult:
    """The input cannot be scored (e.g. an unusable ground truth): not a 0, an invalid score."""
    return EvaluateResult(score=0.0, reason=reason, is_score_valid=False, metrics=metrics or {})


def short(text: object, limit: int = 120) -> str:
    """A one-line preview for reasons and metrics."""
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 3] + "..."


def clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``, braces balanced."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:index]
    return None


def answer_span(text: str) -> tuple[str, str]:
    """Where the final answer is: the last ``\\boxed{}``, else the last ``<answer>`` tag, else
    the whole text. Returns (span, where it came from)."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed, "boxed"
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return tags[-1], "answer tag"
    return text, "text"
