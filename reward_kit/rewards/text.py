"""Text rewards: string checks (OpenAI ``string_check``) and similarity (fuzzy, BLEU, ROUGE)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from .._errors import InvalidRequest
from .._extras import require
from .._function import reward_function
from .._models import EvaluateResult, Message
from ._common import check_bool, check_choice, clip, completion, kind, result, scalar_truth, short
from ._common import metric as _metric  # a parameter below is named ``metric``

__all__ = ["string_check_reward", "text_similarity_reward"]

Operation = Literal["equals", "not_equals", "contains", "not_contains", "regex"]
Similarity = Literal["fuzzy", "token_set", "bleu", "chrf", "rouge1", "rouge2", "rougeL"]
_OPERATIONS = ("equals", "not_equals", "contains", "not_contains", "regex")
_SIMILARITIES = ("fuzzy", "token_set", "bleu", "chrf", "rouge1", "rouge2", "rougeL")


@reward_function(timeout=10)
def string_check_reward(
    messages: list[Message],
    ground_truth: str | None = None,
    *,
    operation: Operation = "equals",
    case_sensitive: bool = True,
    strip: bool = True,
) -> EvaluateResult:
    """1.0 when the response ``equals`` / ``contains`` / matches (``regex``, searched) the
    reference, or for the ``not_`` forms when it does not.

    ground_truth: the reference string (a regular expression for ``regex``).

    >>> string_check_reward([{"role": "assistant", "content": "Paris, France"}],
    ...                     ground_truth="paris", operation="contains",
    ...                     case_sensitive=False).score
    1.0
    """
    reference = scalar_truth(ground_truth, "string_check_reward", "the reference string")
    check_choice("operation", operation, _OPERATIONS)
    check_bool("case_sensitive", case_sensitive)
    check_bool("strip", strip)
    text = completion(messages).text
    if strip:
        text, reference = text.strip(), reference.strip()
    if operation == "regex":
        flags = 0 if case_sensitive else re.IGNORECASE
        try:
            passed = re.search(reference, text, flags) is not None
        except re.error as error:
            raise InvalidRequest(f"ground_truth: not a valid regular expression: {error}") from None
    else:
        if not case_sensitive:
            text, reference = text.casefold(), reference.casefold()
        checks = {
            "equals": lambda: text == reference,
            "not_equals": lambda: text != reference,
            "contains": lambda: reference in text,
            "not_contains": lambda: reference not in text,
        }
        passed = checks[operation]()
    why = f"{operation} {short(ground_truth, 60)!r}: {'passed' if passed else 'failed'}"
    return result(float(passed), why, {operation: _metric(float(passed), why)})


def _similarity(metric_name: str, text: str, references: list[str]) -> float:
    if metric_name in ("fuzzy", "token_set"):
        fuzz = require("rapidfuzz.fuzz", extra="text", feature="text_similarity_reward")
        scorer = fuzz.ratio if metric_name == "fuzzy" else fuzz.token_set_ratio
        return max(float(scorer(text, ref)) for ref in references) / 100.0
    if metric_name in ("bleu", "chrf"):
        sacrebleu = require("sacrebleu", extra="text", feature="text_similarity_reward")
        score = sacrebleu.sentence_bleu if metric_name == "bleu" else sacrebleu.sentence_chrf
        return float(score(text, references).score) / 100.0
    if metric_name in ("rouge1", "rouge2", "rougeL"):
        rouge = require("rouge_score.rouge_scorer", extra="text", feature="text_similarity_reward")
        scorer = rouge.RougeScorer([metric_name], use_stemmer=True)
        return max(float(scorer.score(ref, text)[metric_name].fmeasure) for ref in references)
    raise InvalidRequest(
        f"metric: unknown {metric_name!r}; use fuzzy, token_set, bleu, chrf, rouge1, rouge2 "
        "or rougeL"
    )


def _references(value: object) -> list[str]:
    """The reference texts: one string, or a non-empty list of strings."""
    expected = "a reference string or a non-empty list of strings"
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, (list, tuple)) and value:
        bad = next(i for i, v in enumerate(value) if not isinstance(v, str))
        raise InvalidRequest(f"ground_truth.{bad}: expected a string, got {kind(value[bad])}")
    if value is None:
        raise InvalidRequest(f"ground_truth: text_similarity_reward needs {expected}")
    raise InvalidRequest(f"ground_truth: expected {expected}, got {kind(value)}")


@reward_function(timeout=10, requirements=["rapidfuzz>=3", "sacrebleu>=2", "rouge-score>=0.1"])
def text_similarity_reward(
    messages: list[Message],
    ground_truth: str | Sequence[str] | None = None,
    *,
    metric: Similarity = "fuzzy",
) -> EvaluateResult:
    """Similarity of the response to the reference(s), in [0, 1].

    ``fuzzy`` / ``token_set``: rapidfuzz ratios; ``bleu`` / ``chrf``: sacrebleu sentence scores
    (multi-reference); ``rouge1`` / ``rouge2`` / ``rougeL``: rouge-score F1 with stemming (best
    reference).
    ground_truth: the reference string, or a list of references.

    >>> text_similarity_reward([{"role": "assistant", "content": "the cat sat"}],
    ...                        ground_truth="the cat sat", metric="rougeL").score
    1.0
    """
    check_choice("metric", metric, _SIMILARITIES)
    references = _references(ground_truth)
    text = completion(messages).text
    score = clip(_similarity(metric, text, references))
    why = f"{metric} similarity {score:.3f} to {len(references)} reference(s)"
    return result(score, why, {metric: _metric(score, why)})
