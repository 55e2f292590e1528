"""Format and style rewards: regex format, tag counts, length, repetition, reasoning steps."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

from .._errors import InvalidRequest
from .._function import reward_function
from .._models import EvaluateResult, Message
from ._common import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_str,
    clip,
    completion,
    kind,
    metric,
    result,
    scalar_truth,
    short,
)

__all__ = [
    "DEFAULT_FORMAT",
    "cosine_length_reward",
    "format_reward",
    "length_reward",
    "reasoning_steps_reward",
    "repetition_penalty_reward",
    "tag_count_reward",
]

DEFAULT_FORMAT = r"^<think>\n?.*?\n?</think>\s*<answer>\n?.*?\n?</answer>$"
# Open-R1's step markers: "Step 1:", numbered lines, bullets, and ordinal transition words.
DEFAULT_STEPS = r"(Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)"
Unit = Literal["chars", "words"]


def _pattern(pattern: str, flags: int, name: str) -> re.Pattern[str]:
    check_str(name, pattern)
    try:
        return re.compile(pattern, flags)
    except re.error as error:
        raise InvalidRequest(f"{name}: not a valid regular expression: {error}") from None


def _length(text: str, unit: Unit) -> int:
    check_choice("unit", unit, ("chars", "words"))
    return len(text) if unit == "chars" else len(text.split())


def _tags(value: object) -> list[str]:
    """Tag names: a list of strings, or one name (``"think"``, not its letters)."""
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, (list, tuple)) or not tags:
        raise InvalidRequest(f"tags: expected a list of tag names, got {kind(value)}")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidRequest(f"tags.{index}: expected a tag name, got {kind(tag)}")
    return list(tags)


@reward_function(timeout=10)
def format_reward(
    messages: list[Message],
    *,
    pattern: str = DEFAULT_FORMAT,
    full_match: bool = True,
) -> EvaluateResult:
    """1.0 when the response matches ``pattern`` (whole text, or anywhere if not ``full_match``).

    Default: ``<think>...</think>`` then ``<answer>...</answer>`` and nothing else.
    ground_truth: not used.

    >>> format_reward([{"role": "assistant",
    ...                 "content": "<think>2+2</think><answer>4</answer>"}]).score
    1.0
    """
    regex = _pattern(pattern, re.DOTALL | re.MULTILINE, "pattern")
    check_bool("full_match", full_match)
    text = completion(messages).text.strip()
    found = regex.fullmatch(text) if full_match else regex.search(text)
    how = "the whole response" if full_match else "part of the response"
    verdict = "matches" if found else "does not match"
    reason = f"{how} {verdict} {short(pattern, 60)!r}"
    return result(float(bool(found)), reason, {"format": metric(float(bool(found)), reason)})


@reward_function(timeout=10)
def tag_count_reward(
    messages: list[Message],
    *,
    tags: Sequence[str] = ("think", "answer"),
) -> EvaluateResult:
    """Each ``<tag>`` and ``</tag>`` present exactly once earns an equal share of 1.0.

    Open-R1's ``tag_count`` (0.25 each for the four think/answer tags) generalised.
    ground_truth: not used.

    >>> tag_count_reward([{"role": "assistant", "content": "<think>x</think>"}]).score
    0.5
    """
    tags = _tags(tags)
    text = completion(messages).text
    share = 1.0 / (2 * len(tags))
    metrics, score = {}, 0.0
    for tag in tags:
        for marker in (f"<{tag}>", f"</{tag}>"):
            count = text.count(marker)
            score += share if count == 1 else 0.0
            metrics[marker] = metric(float(count == 1), f"found {count} time(s), want 1")
    good = sum(m.score for m in metrics.values())
    return result(score, f"{good:g} of {len(metrics)} tags appear exactly once", metrics)


@reward_function(timeout=10)
def length_reward(
    messages: list[Message],
    *,
    min_length: int = 0,
    max_length: int | None = None,
    target_length: int | None = None,
    unit: Unit = "words",
    scaling: Literal["linear", "cosine"] = "linear",
) -> EvaluateResult:
    """Length within bounds, or close to a target.

    With ``target_length``: 1.0 at the target, falling to 0 at twice the distance (linear or
    cosine). Otherwise 1.0 inside [``min_length``, ``max_length``], falling to 0 at zero length
    below and at ``2 * max_length`` above.
    ground_truth: not used.

    >>> length_reward([{"role": "assistant", "content": "one two three"}], target_length=3).score
    1.0
    """
    check_int("min_length", min_length, minimum=0)
    if max_length is not None:
        check_int("max_length", max_length, minimum=max(min_length, 1))
    if target_length is not None:
        check_int("target_length", target_length, minimum=1)
    check_choice("scaling", scaling, ("linear", "cosine"))
    length = _length(completion(messages).text, unit)
    shape = (lambda d: 1.0 - d) if scaling == "linear" else (lambda d: math.cos(d * math.pi / 2))
    if target_length is not None:
        distance = clip(abs(length - target_length) / target_length)
        score, why = shape(distance), f"{length} {unit}, target {target_length}"
    else:
        if length < min_length:
            score, why = shape(1 - length / min_length), f"{length} {unit} < min {min_length}"
        elif max_length is not None and length > max_length:
            distance = clip((length - max_length) / max_length)
            score, why = shape(distance), f"{length} {unit} > max {max_length}"
        else:
            score, why = 1.0, f"{length} {unit} within bounds"
    score = clip(score)
    return result(score, why, {"length": metric(score, why)})


@reward_function(timeout=10)
def cosine_length_reward(
    messages: list[Message],
    ground_truth: str | None = None,
    *,
    is_correct: bool | None = None,
    max_length: int = 1000,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    unit: Unit = "chars",
) -> EvaluateResult:
    """Kimi 1.5 / Open-R1 cosine length schedule: short correct answers score most, long wrong
    answers are penalised least.

    Correctness is ``is_correct``, else math-verify against ground_truth (the ``math`` extra).
    ground_truth: the reference answer (only when ``is_correct`` is not given).

    >>> cosine_length_reward([{"role": "assistant", "content": "4"}], is_correct=True).score
    0.9999...
    """
    check_int("max_length", max_length, minimum=1)
    for name, value in (
        ("min_value_correct", min_value_correct),
        ("max_value_correct", max_value_correct),
        ("min_value_wrong", min_value_wrong),
        ("max_value_wrong", max_value_wrong),
    ):
        check_number(name, value)
    text = completion(messages).text
    _length(text, unit)  # checks ``unit`` before the (slow) math-verify call
    if is_correct is not None:
        check_bool("is_correct", is_correct)
    else:
        if ground_truth is None:
            raise InvalidRequest("cosine_length_reward needs is_correct or a ground_truth")
        from .math import math_verify_equal

        gold = scalar_truth(
            ground_truth, "cosine_length_reward", "the reference answer (text or a number)"
        )
        equal, _, _ = math_verify_equal(gold, text)
        if equal is None:
            raise InvalidRequest(f"ground_truth {short(ground_truth)!r} could not be parsed")
        is_correct = equal
    length = _length(text, unit)
    progress = min(1.0, length / max_length)
    cosine = math.cos(progress * math.pi)
    if is_correct:
        low, high = min_value_correct, max_value_correct
    else:
        # Swapped so the penalty shrinks as the wrong answer gets longer (more effort).
        low, high = max_value_wrong, min_value_wrong
    score = low + 0.5 * (high - low) * (1.0 + cosine)
    metrics = {
        "correct": metric(float(is_correct), "given" if ground_truth is None else "math-verify"),
        "length": metric(1.0 - progress, f"{length} of {max_length} {unit}"),
    }
    verdict = "correct" if is_correct else "wrong"
    return result(score, f"{verdict}, {length} {unit} of {max_length}", metrics)


@reward_function(timeout=10)
def repetition_penalty_reward(
    messages: list[Message],
    *,
    ngram_size: int = 3,
    max_penalty: float = -1.0,
) -> EvaluateResult:
    """Open-R1's n-gram repetition penalty: ``max_penalty`` times the share of repeated n-grams.

    Scores lie in [``max_penalty``, 0]; 0 means no repetition (or fewer words than n).
    ground_truth: not used.

    >>> repetition_penalty_reward([{"role": "assistant", "content": "a b c a b c a b c"}],
    ...                           ngram_size=3).score
    -0.571...
    """
    check_number("max_penalty", max_penalty, maximum=0.0)
    check_int("ngram_size", ngram_size, minimum=1)
    words = completion(messages).text.lower().split()
    if len(words) < ngram_size:
        why = f"{len(words)} words, fewer than n={ngram_size}"
        return result(0.0, why, {"repeated_ngrams": metric(0.0, why)})
    ngrams = [tuple(words[i : i + ngram_size]) for i in range(len(words) - ngram_size + 1)]
    repeated = 1.0 - len(set(ngrams)) / len(ngrams)
    why = f"{len(ngrams) - len(set(ngrams))} of {len(ngrams)} {ngram_size}-grams repeat"
    return result(repeated * max_penalty, why, {"repeated_ngrams": metric(repeated, why)})


@reward_function(timeout=10)
def reasoning_steps_reward(
    messages: list[Message],
    *,
    min_steps: int = 3,
    pattern: str = DEFAULT_STEPS,
) -> EvaluateResult:
    """Counts step markers ("Step 1:", "1.", bullets, "First,"...): ``min(1, count / min_steps)``.

    ground_truth: not used.

    >>> reasoning_steps_reward([{"role": "assistant",
    ...                          "content": "Step 1: a\\nStep 2: b\\nStep 3: c"}]).score
    1.0
    """
    check_int("min_steps", min_steps, minimum=1)
    regex = _pattern(pattern, re.MULTILINE, "pattern")
    count = len(regex.findall(completion(messages).text))
    score = min(1.0, count / min_steps)
    why = f"{count} step marker(s), {min_steps} wanted"
    return result(score, why, {"steps": metric(score, why)})
