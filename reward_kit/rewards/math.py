"""Math rewards: math-verify equivalence, GSM8K answers, multiple choice, lists of answers."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from .._errors import InvalidRequest
from .._extras import require
from .._function import reward_function
from .._models import EvaluateResult, Message
from ._common import (
    answer_span,
    check_bool,
    check_int,
    check_number,
    completion,
    invalid,
    kind,
    metric,
    result,
    scalar_truth,
    short,
)

__all__ = [
    "gsm8k_reward",
    "list_comparison_reward",
    "math_verify_equal",
    "math_verify_reward",
    "multiple_choice_reward",
]

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


class _QuietTimeoutNotice(logging.Filter):
    """math-verify logs a warning when its own timeouts are off; ours are on (the engine's
    process deadline), so the notice is noise in every worker."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


def _math_verify() -> Any:
    module = require("math_verify", extra="math", feature="math_verify_reward")
    for name in ("math_verify.parser", "math_verify.grader"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietTimeoutNotice) for f in logger.filters):
            logger.addFilter(_QuietTimeoutNotice())
    return module


def _match_types(value: Any) -> list[str]:
    """``"latex"`` alone, or a list of kinds (a bare string is one kind, not its letters)."""
    kinds = [value] if isinstance(value, str) else value
    if not isinstance(kinds, (list, tuple)) or not all(isinstance(k, str) for k in kinds):
        raise InvalidRequest(
            f"match_types: expected 'latex', 'expr' or a list of them, got {kind(value)}"
        )
    return list(kinds)


def _configs(mv: Any, match_types: Sequence[str] | str) -> list[Any]:
    configs: list[Any] = []
    for match_type in _match_types(match_types):
        if match_type == "latex":
            # boxed_match_priority=0: a \boxed{} answer wins over any other LaTeX in the text.
            configs.append(mv.LatexExtractionConfig(boxed_match_priority=0))
        elif match_type == "expr":
            configs.append(mv.ExprExtractionConfig())
        else:
            raise InvalidRequest(
                f"match_types: unknown kind {match_type!r} (use 'latex' and/or 'expr')"
            )
    if not configs:
        raise InvalidRequest("match_types: give at least one of 'latex', 'expr'")
    return configs


def math_verify_equal(
    gold: str,
    answer: str,
    *,
    match_types: Sequence[str] | str = ("latex", "expr"),
    float_rounding: int = 6,
    strict: bool = True,
) -> tuple[bool | None, str, str]:
    """(equal, gold as parsed, answer as parsed); ``equal`` is None when the gold does not parse.

    math-verify's signal-based timeouts are off (they fail outside the main thread and can
    hang); the engine's per-item process deadline bounds the time instead.
    """
    check_int("float_rounding", float_rounding, minimum=0)
    check_bool("strict", strict)
    mv = _math_verify()
    configs = _configs(mv, match_types)
    gold_parsed = mv.parse(gold, configs, parsing_timeout=None)
    if not gold_parsed:
        return None, "", ""
    answer_parsed = mv.parse(answer, configs, parsing_timeout=None)
    if not answer_parsed:
        return False, _shown(gold_parsed), ""
    equal = mv.verify(
        gold_parsed,
        answer_parsed,
        float_rounding=float_rounding,
        strict=strict,
        timeout_seconds=None,
    )
    return bool(equal), _shown(gold_parsed), _shown(answer_parsed)


def _shown(parsed: list[Any]) -> str:
    # parse() returns [sympy object, matched text]; show the text: printing some sympy
    # objects is slow enough to hang.
    texts = [p for p in parsed if isinstance(p, str)]
    return short(texts[-1] if texts else type(parsed[0]).__name__)


@reward_function(timeout=30, requirements=["math-verify[antlr4_13_2]>=0.8"])
def math_verify_reward(
    messages: list[Message],
    ground_truth: str | float | None = None,
    *,
    match_types: Sequence[str] | str = ("latex", "expr"),
    float_rounding: int = 6,
    strict: bool = True,
) -> EvaluateResult:
    """Symbolic equivalence of the final answer and the ground truth, with math-verify.

    Prefers ``\\boxed{}``, then other LaTeX, then plain expressions (``match_types``: ``"latex"``,
    ``"expr"`` or a list of them).
    ground_truth: the answer as LaTeX or plain text, e.g. ``"$\\frac{1}{2}$"`` or ``"0.5"``.

    >>> math_verify_reward([{"role": "assistant", "content": "So $\\\\boxed{1/2}$"}],
    ...                    ground_truth="0.5").score  # doctest: +SKIP
    1.0
    """
    gold = scalar_truth(
        ground_truth, "math_verify_reward", "the reference answer (text or a number)"
    )
    text = completion(messages).text
    equal, gold_shown, answer_shown = math_verify_equal(
        gold, text, match_types=match_types, float_rounding=float_rounding, strict=strict
    )
    if equal is None:
        return invalid(f"the ground truth {short(gold)!r} could not be parsed as math")
    metrics = {
        "answer_extracted": metric(
            float(bool(answer_shown)),
            f"extracted {answer_shown!r}" if answer_shown else "no answer found in the response",
        ),
        "equivalent": metric(float(equal), f"gold {gold_shown!r}"),
    }
    if equal:
        return result(1.0, f"{answer_shown!r} is equivalent to {gold_shown!r}", metrics)
    if not answer_shown:
        return result(0.0, "no answer found in the response", metrics)
    return result(0.0, f"{answer_shown!r} is not equivalent to {gold_shown!r}", metrics)


def _number(text: str) -> Decimal | None:
    cleaned = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def _gsm8k_answer(text: str) -> tuple[Decimal | None, str]:
    if "####" in text:
        tail = text.rsplit("####", 1)[1]
        found = _NUMBER.search(tail)
        return (_number(found.group()) if found else None), "after ####"
    numbers = _NUMBER.findall(text)
    return (_number(numbers[-1]) if numbers else None), "last number"


@reward_function(timeout=10)
def gsm8k_reward(
    messages: list[Message],
    ground_truth: str | float | None = None,
    *,
    tolerance: float = 1e-6,
) -> EvaluateResult:
    """GSM8K: the number after ``####`` (else the last number) equals the ground truth's.

    ground_truth: the GSM8K answer field (``"... #### 72"``) or just the number.

    >>> gsm8k_reward([{"role": "assistant", "content": "3 + 4 = 7\\n#### 7"}],
    ...              ground_truth="#### 7").score
    1.0
    """
    truth = scalar_truth(ground_truth, "gsm8k_reward", "the reference answer (text or a number)")
    check_number("tolerance", tolerance, minimum=0.0)
    gold, _ = _gsm8k_answer(truth)
    if gold is None:
        return invalid(f"no number in the ground truth {short(ground_truth)!r}")
    answer, where = _gsm8k_answer(completion(messages).text)
    if answer is None:
        found = metric(0.0, "no number in the response")
        return result(0.0, "no number in the response", {"answer_extracted": found})
    equal = abs(answer - gold) <= Decimal(str(tolerance)) * max(Decimal(1), abs(gold))
    metrics = {
        "answer_extracted": metric(1.0, f"{answer} ({where})"),
        "correct": metric(float(equal), f"expected {gold}"),
    }
    verdict = "equals" if equal else "differs from"
    return result(float(equal), f"{answer} {verdict} {gold}", metrics)


def _choice_patterns(choices: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    upper, lower = re.escape(choices), re.escape(choices.lower())
    # A lowercase letter counts only where it cannot be a word: in parentheses ("(b)"), or
    # stated and then followed by punctuation or the end of the line ("answer is b.", but
    # not "the answer is a bit long").
    stated = re.compile(
        rf"(?:(?i:answer(?:\s+is)?)\s*[:=]?\s*|\\boxed\{{\s*|<answer>\s*)"
        rf"(?:\(([{lower}])\)|\(?([{upper}])\)?(?![A-Za-z])"
        rf"|([{lower}])(?=[ \t]*(?:$|[.,;:!?)}}<*])))",
        re.MULTILINE,
    )
    # A lone option: "(B)" or "(b)", or a line holding just the capital ("B", "B.", "**B**").
    lone = re.compile(rf"\(([{upper}{lower}])\)|^\W*([{upper}])[).:]?\W*$", re.MULTILINE)
    return stated, lone


def _choices(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.isalpha()
        or not value.isascii()
        or len(set(value.upper())) != len(value)
    ):
        raise InvalidRequest(
            f"choices: expected the option letters, e.g. 'ABCD', got {kind(value)}"
        )
    return value.upper()


@reward_function(timeout=10)
def multiple_choice_reward(
    messages: list[Message],
    ground_truth: str | None = None,
    *,
    choices: str = "ABCDE",
) -> EvaluateResult:
    """The chosen option letter equals the ground truth's.

    Looks for "answer is (B)", ``\\boxed{B}`` or ``<answer>B</answer>`` (the last one wins),
    else a lone option ("(B)" or a line with just "B"); different lone options are ambiguous
    and score 0. Lowercase letters count in parentheses ("(b)") or when stated and followed by
    punctuation or the line's end ("answer is b."), never as a word ("answer is a bit...").
    ground_truth: the letter, e.g. ``"B"`` or ``"(B)"`` (a string that is no option letter
    gives an invalid score).

    >>> multiple_choice_reward([{"role": "assistant", "content": "The answer is (B)."}],
    ...                        ground_truth="B").score
    1.0
    """
    choices = _choices(choices)
    if not isinstance(ground_truth, str):
        raise InvalidRequest(
            f"ground_truth: multiple_choice_reward expected the option letter, e.g. 'B', "
            f"got {kind(ground_truth)}"
        )
    gold = ground_truth.strip().strip("()").upper()
    if len(gold) != 1 or gold not in choices:
        return invalid(f"ground truth {short(ground_truth)!r} is not one of {choices!r}")
    stated, lone = _choice_patterns(choices)
    text = completion(messages).text
    found = ["".join(groups) for groups in stated.findall(text)]
    if found:
        chosen, how = found[-1].upper(), "stated answer"
    else:
        options = {(a or b).upper() for a, b in lone.findall(text)}
        if len(options) != 1:
            why = "no option letter found" if not options else f"ambiguous: {sorted(options)}"
            return result(0.0, why, {"answer_extracted": metric(0.0, why)})
        chosen, how = options.pop(), "lone option"
    correct = chosen == gold
    metrics = {
        "answer_extracted": metric(1.0, f"{chosen} ({how})"),
        "correct": metric(float(correct), f"expected {gold}"),
    }
    return result(float(correct), f"chose {chosen}, expected {gold}", metrics)


def _gold_items(value: Any) -> list[str]:
    """The ground truth's items: a list of strings/numbers, or a comma-separated string."""
    expected = "a list of answers (strings or numbers) or a comma-separated string"
    if value is None:
        raise InvalidRequest(f"ground_truth: list_comparison_reward needs {expected}")
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise InvalidRequest(
                    f"ground_truth.{index}: expected a string or a number, got {kind(item)}"
                )
    elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidRequest(f"ground_truth: expected {expected}, got {kind(value)}")
    return _items(value)


def _items(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        raw = [str(v) for v in value]
    else:
        span, _ = answer_span(str(value))
        span = span.strip().strip("[](){}")
        raw = re.split(r"[,;]|\s+and\s+", span)
    items = []
    for item in raw:
        text = item.strip().strip("$ .")
        if not text:
            continue
        number = _number(text)
        items.append(str(number.normalize()) if number is not None else text.lower())
    return items


@reward_function(timeout=10)
def list_comparison_reward(
    messages: list[Message],
    ground_truth: list[Any] | str | None = None,
    *,
    order_matters: bool = False,
    partial_credit: bool = False,
) -> EvaluateResult:
    """The listed answers (from ``\\boxed{}``, ``<answer>`` or the text) equal the ground truth.

    Items are split on commas/semicolons; numbers compare by value. ``partial_credit`` scores
    the F1 of the two multisets instead of all-or-nothing.
    ground_truth: a list (``[2, 3, 5]``) or a comma-separated string (``"2, 3, 5"``).

    >>> list_comparison_reward([{"role": "assistant", "content": "\\\\boxed{5, 3, 2}"}],
    ...                        ground_truth=[2, 3, 5]).score
    1.0
    """
    gold = _gold_items(ground_truth)
    check_bool("order_matters", order_matters)
    check_bool("partial_credit", partial_credit)
    if not gold:
        return invalid(f"ground truth {short(ground_truth)!r} holds no items")
    text = completion(messages).text
    span, where = answer_span(text)
    if where == "text":
        lines = [line for line in text.strip().splitlines() if line.strip()]
        span = lines[-1] if lines else ""
    answer = _items(span)
    if order_matters:
        equal = answer == gold
        overlap = sum(a == g for a, g in zip(answer, gold, strict=False))
    else:
        equal = Counter(answer) == Counter(gold)
        overlap = sum((Counter(answer) & Counter(gold)).values())
    precision = overlap / len(answer) if answer else 0.0
    recall = overlap / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if overlap else 0.0
    score = f1 if partial_credit and not equal else float(equal)
    metrics = {
        "answer_extracted": metric(float(bool(answer)), f"{answer} (from {where})"),
        "exact": metric(float(equal), "ordered" if order_matters else "as a multiset"),
        "f1": metric(f1, f"{overlap} of {len(gold)} expected items matched"),
    }
    return result(score, f"{answer} vs expected {gold}", metrics)
