"""LLM-as-judge: score a response with a rubric on any OpenAI-compatible chat endpoint.

Where the judge is (base URL), which model and which environment variable holds its key are
operator configuration, never request fields: a request that could name them could make the
server send any of its environment variables to any URL. The operator sets them with
``RK_JUDGE_*`` variables (for :data:`llm_judge_reward`) or in code with :func:`llm_judge`.
A request may still choose the rubric and its score range: prompt text, not a secret.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .._errors import ConfigurationError, FunctionError, InvalidRequest
from .._function import RewardFunction, reward_function
from .._models import EvaluateResult, Message
from .._retry import parse_retry_after, retry_delay
from ._common import check_int, check_number, check_str, kind, metric, result, short
from .structure import extract_json

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_RUBRIC",
    "llm_judge",
    "llm_judge_reward",
    "parse_judge_score",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_RUBRIC = (
    "Rate how well the assistant's last reply answers the user: correct, complete, clear. "
    "If a reference answer is given, judge correctness against it."
)
_SYSTEM = (
    "You are a strict, fair grader. Grading rubric:\n{rubric}\n\n"
    'Reply with only a JSON object: {{"score": <a number from {low:g} to {high:g}>, '
    '"reason": "<one sentence>"}}.'
)
# Transient statuses only: 501 Not Implemented, 505+ (version, storage, loop, network auth)
# give the same answer however often they are asked. Kept in sync with the docstrings.
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


async def _complete(
    url: str, headers: dict[str, str], body: dict[str, Any], *, timeout: float, attempts: int
) -> str:
    """POST with a small retry loop: transport errors and HTTP 408, 409, 425, 429, 500, 502,
    503 and 504 are retried with jittered exponential backoff (or Retry-After); other statuses
    (501, 505 and up, other 4xx) fail at once: trying again cannot change them."""
    problem = ""
    async with httpx.AsyncClient(timeout=timeout) as client:
        for attempt in range(attempts):
            retry_after: float | None = None
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
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None and retry_after > _MAX_RETRY_AFTER:
                # "Not soon": waiting would stall the training step; retrying sooner would be
                # refused again. Give up now, as the SDK does.
                problem += f" (Retry-After {retry_after:g}s)"
                break
            if attempt + 1 < attempts:
                delay = retry_delay(
                    attempt, base=0.5, maximum=_MAX_BACKOFF, retry_after=retry_after
                )
                await asyncio.sleep(delay)
    raise FunctionError(f"the judge endpoint failed {attempts} time(s); last: {problem}")


@dataclass(frozen=True)
class _Endpoint:
    """Operator configuration of one judge: never built from a request."""

    base_url: str
    model: str
    api_key_env: str | None
    temperature: float = 0.0
    max_tokens: int = 512
    request_timeout: float = 60.0
    max_attempts: int = 3

    def headers(self) -> dict[str, str]:
        if not self.api_key_env:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigurationError(
                f"the LLM judge reads its API key from ${self.api_key_env}, which is not set "
                "(configure api_key_env=None, or RK_JUDGE_API_KEY_ENV='', for an endpoint "
                "without a key)"
            )
        return {"Authorization": f"Bearer {key}"}


def _endpoint_from_environment() -> _Endpoint:
    """``llm_judge_reward``'s endpoint, read when it is called (not at import: a worker or a
    test may set the variables after importing)."""
    model = os.environ.get("RK_JUDGE_MODEL", "").strip()
    if not model:
        raise ConfigurationError(
            "llm_judge_reward: set RK_JUDGE_MODEL (and RK_JUDGE_BASE_URL, RK_JUDGE_API_KEY_ENV) "
            "in the server's environment, or serve llm_judge(base_url=..., model=..., "
            "api_key_env=...) from your rewards file; requests cannot choose the endpoint"
        )
    base_url = os.environ.get("RK_JUDGE_BASE_URL", "").strip() or DEFAULT_BASE_URL
    key_env = os.environ.get("RK_JUDGE_API_KEY_ENV")
    if key_env is None:
        if base_url != DEFAULT_BASE_URL:
            # Sending $OPENAI_API_KEY to another host by default would leak it.
            raise ConfigurationError(
                "llm_judge_reward: RK_JUDGE_BASE_URL is set, so set RK_JUDGE_API_KEY_ENV too "
                "(the name of the variable holding that endpoint's key, or '' for none)"
            )
        key_env = "OPENAI_API_KEY"
    _check_url(base_url, ConfigurationError)
    return _Endpoint(base_url=base_url, model=model, api_key_env=key_env.strip() or None)


def _check_url(base_url: str, error: type[Exception]) -> None:
    # Never echo the URL: it may hold a password, and these errors reach logs and callers.
    if not base_url.startswith(("http://", "https://")):
        raise error("base_url: expected an http(s) URL (http://... or https://...)")
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        raise error("base_url: not a valid URL") from None
    if not url.host:
        raise error("base_url: expected an http(s) URL with a host")
    if url.userinfo:
        raise error(
            "base_url: must not hold a user or password (user:token@host); give the key with "
            "api_key_env (RK_JUDGE_API_KEY_ENV) instead"
        )


def _score_range(value: Any) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise InvalidRequest(f"score_range: expected [low, high], got {kind(value)}")
    low = check_number("score_range.0", value[0])
    high = check_number("score_range.1", value[1])
    if not low < high:
        raise InvalidRequest(f"score_range: expected [low, high] with low < high, got {value}")
    return low, high


async def _grade(
    endpoint: _Endpoint,
    messages: list[Message],
    ground_truth: Any,
    rubric: Any,
    score_range: Any,
) -> EvaluateResult:
    rubric = check_str("rubric", rubric)
    if not rubric.strip():
        raise InvalidRequest("rubric: expected a non-empty rubric text")
    low, high = _score_range(score_range)
    headers = endpoint.headers()
    body = {
        "model": endpoint.model,
        "temperature": endpoint.temperature,
        "max_tokens": endpoint.max_tokens,
        "messages": [
            {"role": "system", "content": _SYSTEM.format(rubric=rubric, low=low, high=high)},
            {"role": "user", "content": _transcript(messages, ground_truth)},
        ],
    }
    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    reply = await _complete(
        url, headers, body, timeout=endpoint.request_timeout, attempts=endpoint.max_attempts
    )
    raw, reason = parse_judge_score(reply, low, high)
    score = (raw - low) / (high - low)
    metrics = {"judge": metric(score, f"{raw:g} on [{low:g}, {high:g}]: {short(reason, 200)}")}
    return result(score, short(reason, 300), metrics)


@reward_function(timeout=120)
async def llm_judge_reward(
    messages: list[Message],
    ground_truth: Any = None,
    *,
    rubric: str = DEFAULT_RUBRIC,
    score_range: tuple[float, float] = (0.0, 10.0),
) -> EvaluateResult:
    """An LLM grades the conversation with ``rubric`` on the operator's OpenAI-compatible
    endpoint; its score is scaled from ``score_range`` to [0, 1].

    The endpoint is the server's configuration, read at call time: ``RK_JUDGE_MODEL``
    (required), ``RK_JUDGE_BASE_URL`` (default OpenAI) and ``RK_JUDGE_API_KEY_ENV`` (the name of
    the variable holding the key; '' for none). Requests choose only ``rubric`` and
    ``score_range``; other fields (``base_url``, ``model``, ``api_key_env``...) are ignored. For
    several judges, or other settings, serve ``llm_judge(...)``. Retries transport errors and
    HTTP 408, 409, 425, 429, 500, 502, 503 and 504 (3 attempts; other statuses fail at once).
    No score in the reply, or a failed endpoint, raises: never a 0.
    ground_truth: optional reference answer shown to the judge.

    >>> await llm_judge_reward(messages, rubric="Is it polite?")  # doctest: +SKIP
    """
    endpoint = _endpoint_from_environment()
    return await _grade(endpoint, messages, ground_truth, rubric, score_range)


def llm_judge(
    *,
    base_url: str,
    model: str,
    api_key_env: str | None,
    rubric: str = DEFAULT_RUBRIC,
    score_range: tuple[float, float] = (0.0, 10.0),
    rubric_from_request: bool = True,
    temperature: float = 0.0,
    max_tokens: int = 512,
    request_timeout: float = 60.0,
    max_attempts: int = 3,
    name: str = "llm_judge",
    timeout: float = 120.0,
) -> RewardFunction[Any]:
    """An LLM-judge reward on the endpoint the operator configures here; serve it from a
    rewards file (assign it at module level).

    ``api_key_env`` names the environment variable holding the key (None: no key); it is read
    at each call. A request may override ``rubric`` and ``score_range`` unless
    ``rubric_from_request=False`` (then a request that sends one is refused); it can never
    choose the endpoint, model or key.

    >>> judge = llm_judge(base_url="http://127.0.0.1:8080/v1", model="qwen2.5-7b",
    ...                   api_key_env=None, rubric="Is it polite?")
    >>> judge.name, judge.is_async
    ('llm_judge', True)
    """
    if not isinstance(base_url, str):
        raise TypeError(f"llm_judge: base_url must be a string, got {type(base_url).__name__}")
    _check_url(base_url, ValueError)
    if not isinstance(model, str) or not model.strip():
        raise ValueError("llm_judge: model must be the judge model's name")
    if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env):
        raise ValueError("llm_judge: api_key_env must name an environment variable, or be None")
    try:
        default_range = _score_range(score_range)
        check_str("rubric", rubric)
        check_number("temperature", temperature, minimum=0.0)
        check_int("max_tokens", max_tokens, minimum=1)
        check_number("request_timeout", request_timeout, minimum=0.001)
        check_int("max_attempts", max_attempts, minimum=1)
    except InvalidRequest as error:
        raise ValueError(f"llm_judge: {error.message}") from None
    default_rubric = rubric  # the closure's own ``rubric`` is the request's
    endpoint = _Endpoint(
        base_url=base_url,
        model=model,
        api_key_env=api_key_env,
        temperature=float(temperature),
        max_tokens=max_tokens,
        request_timeout=float(request_timeout),
        max_attempts=max_attempts,
    )

    async def judge(
        messages: list[Message],
        ground_truth: Any = None,
        *,
        rubric: Any = None,
        score_range: Any = None,
    ) -> EvaluateResult:
        if not rubric_from_request and (rubric is not None or score_range is not None):
            field = "rubric" if rubric is not None else "score_range"
            raise InvalidRequest(f"{field}: this judge's rubric is fixed by the server")
        return await _grade(
            endpoint,
            messages,
            ground_truth,
            default_rubric if rubric is None else rubric,
            default_range if score_range is None else score_range,
        )

    # The doc is served to every caller (GET /functions, rk functions): the model, never the
    # endpoint, which may be an internal host.
    judge.__doc__ = f"LLM judge ({model}).\n\nground_truth: optional reference."
    return reward_function(name=name, timeout=timeout)(judge)
