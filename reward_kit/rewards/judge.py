"""LLM-as-judge: score a response with a rubric on any OpenAI-compatible chat endpoint."""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import re
import time
from typing import Any

import httpx

from .._errors import ConfigurationError, FunctionError, InvalidRequest
from .._function import reward_function
from .._models import EvaluateResult, Message
from ._common import metric, result, short
from .structure import extract_json

__all__ = ["DEFAULT_RUBRIC", "llm_judge_reward", "parse_judge_score"]

DEFAULT_RUBRIC = (
    "Rate how well the assistant's last reply answers the user: correct, complete, clear. "
    "If a reference answer is given, judge correctness against it."
)
_SYSTEM = (
    "You are a strict, fair grader. Grading rubric:\n{rubric}\n\n"
    'Reply with only a JSON object: {{"score": <a number from {low:g} to {high:g}>, '
    '"reason": "<one sentence>"}}.'
)
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF = 8.0
_MAX_RETRY_AFTER = 30.0
_SCORE_WORD = re.compile(r"score\W{0,3}\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_FRACTION = re.compile(r"(-?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")
_NUMBER_ONLY = re.compile(r"\s*\**\s*(-?\d+(?:\.\d+)?)\s*\**\s*\.?\s*")


def parse_judge_score(reply: str, low: float, high: float) -> tuple[float, str]:
    """(raw score, reason) from a judge reply: a JSON object with ``score``, else "score: N",
    else "N/high", else a bare number. Raises :class:`FunctionError` when there is none.

    >>> parse_judge_score('Sure! {"score": 8, "reason": "good"}', 0, 10)
    (8.0, 'good')
    """
    value, found = extract_json(reply)
    score: float | None = None
    reason = ""
    if found and isinstance(value, dict) and isinstance(value.get("score"), (int, float, str)):
        try:
            score, reason = float(value["score"]), str(value.get("reason", ""))
        except ValueError:
            score = None
    if score is None and (words := _SCORE_WORD.findall(reply)):
        score = float(words[-1])
    if score is None and (fractions := _FRACTION.findall(reply)):
        top, bottom = fractions[-1]
        if float(bottom) == high:
            score = float(top)
    if score is None and (bare := _NUMBER_ONLY.fullmatch(reply)):
        score = float(bare.group(1))
    if score is None:
        raise FunctionError(f"the judge's reply has no score: {short(reply, 200)!r}")
    if not low <= score <= high:
        raise FunctionError(f"the judge's score {score:g} is outside [{low:g}, {high:g}]")
    return score, reason or short(reply, 200)


def _transcript(messages: list[Message], ground_truth: Any) -> str:
    lines = [f"[{m.role}] {m.text}" for m in messages]
    if ground_truth is not None:
        lines.append(f"[reference answer] {ground_truth}")
    return "\n\n".join(lines)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(_MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        moment = email.utils.parsedate_to_datetime(value)
        return min(_MAX_RETRY_AFTER, max(0.0, moment.timestamp() - time.time()))


async def _complete(
    url: str, headers: dict[str, str], body: dict[str, Any], *, timeout: float, attempts: int
) -> str:
    """POST with a small retry loop: transport errors and 408/409/425/429/5xx are retried
    with jittered exponential backoff (or Retry-After); other errors fail at once."""
    problem = ""
    async with httpx.AsyncClient(timeout=timeout) as client:
        for attempt in range(attempts):
            delay = min(_MAX_BACKOFF, 0.5 * 2**attempt) * (0.5 + random.random())
            try:
                response = await client.post(url, json=body, headers=headers)
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    try:
                        return str(response.json()["choices"][0]["message"]["content"] or "")
                    except (ValueError, KeyError, IndexError, TypeError):
                        raise FunctionError(
                            f"the judge answered 200 with an unexpected body: "
                            f"{short(response.text, 200)!r}"
                        ) from None
                problem = f"HTTP {response.status_code}: {short(response.text, 200)}"
                if response.status_code not in _RETRY_STATUS:
                    raise FunctionError(f"the judge endpoint refused the request: {problem}")
                delay = _retry_after(response) or delay
            if attempt + 1 < attempts:
                await asyncio.sleep(delay)
    raise FunctionError(f"the judge endpoint failed {attempts} time(s); last: {problem}")


@reward_function(timeout=120)
async def llm_judge_reward(
    messages: list[Message],
    ground_truth: Any = None,
    *,
    rubric: str = DEFAULT_RUBRIC,
    model: str | None = None,
    base_url: str = "https://api.openai.com/v1",
    api_key_env: str | None = "OPENAI_API_KEY",
    score_range: tuple[float, float] = (0.0, 10.0),
    temperature: float = 0.0,
    max_tokens: int = 512,
    request_timeout: float = 60.0,
    max_attempts: int = 3,
) -> EvaluateResult:
    """An LLM grades the conversation with ``rubric`` on an OpenAI-compatible
    ``{base_url}/chat/completions``; its score is scaled from ``score_range`` to [0, 1].

    The key is read from the environment variable named ``api_key_env`` (None: no key).
    Retries: transport errors, 408/409/425/429 and 5xx, up to ``max_attempts`` with jittered
    backoff or Retry-After. No score in the reply, or a failed endpoint, raises: never a 0.
    ground_truth: optional reference answer shown to the judge.

    >>> await llm_judge_reward(messages, model="gpt-4o-mini",
    ...                        rubric="Is it polite?")  # doctest: +SKIP
    """
    if not model:
        raise InvalidRequest("model: llm_judge_reward needs the judge model's name")
    low, high = (float(v) for v in score_range)
    if not low < high:
        raise InvalidRequest(
            f"score_range: expected (low, high) with low < high, got {score_range}"
        )
    if max_attempts < 1:
        raise InvalidRequest("max_attempts must be at least 1")
    headers = {}
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigurationError(
                f"llm_judge_reward reads its API key from ${api_key_env}, which is not set "
                "(pass api_key_env=None for an endpoint without a key)"
            )
        headers["Authorization"] = f"Bearer {key}"
    body = {
        "model": model,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "messages": [
            {"role": "system", "content": _SYSTEM.format(rubric=rubric, low=low, high=high)},
            {"role": "user", "content": _transcript(messages, ground_truth)},
        ],
    }
    url = base_url.rstrip("/") + "/chat/completions"
    reply = await _complete(url, headers, body, timeout=request_timeout, attempts=max_attempts)
    raw, reason = parse_judge_score(reply, low, high)
    score = (raw - low) / (high - low)
    metrics = {"judge": metric(score, f"{raw:g} on [{low:g}, {high:g}]: {short(reason, 200)}")}
    return result(score, short(reason, 300), metrics)
