"""Helpers shared by the built-in rewards: the text to score, and result builders."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from typing import Any

from .._errors import InvalidRequest
from .._models import EvaluateResult, Message, MetricResult

__all__ = [
    "answer_span",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_str",
    "clip",
    "completion",
    "invalid",
    "kind",
    "scalar_truth",
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


# Parameter and ground-truth checks. Options travel in request ``kwargs`` and ground truths in
# dataset rows, so any JSON value can arrive; a wrong one must fail with the field's name and
# what was expected (InvalidRequest: a per-item ``invalid`` status), never a bare TypeError
# from deep inside, and never a valid 0.


def kind(value: object) -> str:
    """A JSON-ish name for a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {short(value, 40)!r}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def scalar_truth(value: Any, function: str, expected: str) -> str:
    """The ground truth as text, when it is a string or a number (not a bool, list or object)."""
    if value is None:
        raise InvalidRequest(f"ground_truth: {function} needs {expected}")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidRequest(f"ground_truth: {function} expected {expected}, got {kind(value)}")
    return str(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name}: expected true or false, got {kind(value)}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: expected an integer, got {kind(value)}")
    if minimum is not None and value < minimum:
        raise InvalidRequest(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def check_number(
    name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequest(f"{name}: expected a finite number, got {kind(value)}")
    if minimum is not None and value < minimum:
        raise InvalidRequest(f"{name}: expected a number >= {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise InvalidRequest(f"{name}: expected a number <= {maximum:g}, got {value:g}")
    return float(value)


def check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{name}: expected a string, got {kind(value)}")
    return value


def check_choice(name: str, value: Any, options: Collection[str]) -> str:
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise InvalidRequest(f"{name}: expected one of {listed}, got {kind(value)}")
    return value
