"""Generation: OpenAI-compatible chat completions over aiohttp, with limits and retries.

Why aiohttp rather than the ``openai`` package: against an instant mock on one core the SDK
makes ~460 calls/s (about 2 ms of CPU a call, most of it transforming request parameters), and
aiohttp ~6,400 (shared/reference/eval-pipeline.md §4). The wire format of chat completions is a
JSON POST; the SDK's retries and error classes would be replaced by ours anyway (the taxonomy
below, ``Retry-After`` as a floor, auth stops the run).

Every attempt ends in a reply or a typed :class:`GenerationError` whose ``kind`` is a
``GenerationStatus``; :meth:`Generator.complete` retries the retryable ones with backoff and
jitter, raises the fatal ones (``auth``, ``not_found``), and returns the rest as a failed
:class:`Reply`: a sample that could not be generated is recorded, never scored as 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigurationError, GenerationError
from .._extras import require
from .._retry import parse_retry_after, retry_delay
from .._vocabulary import FATAL_GENERATION_STATUSES, RETRIED_GENERATION_STATUSES, GenerationStatus
from ._config import LimitsConfig, ModelConfig
from ._dataset import Prompt
from ._limits import TokenBucket, estimate_tokens

__all__ = [
    "Choice",
    "Endpoint",
    "Generator",
    "Reply",
    "derive_seed",
    "request_body",
    "sampling_parameters",
]

_CONTEXT_MARKERS = (
    "context_length",
    "context length",
    "maximum context",
    "context window",
    "too many tokens",
    "prompt is too long",
    "exceeds the model",
)


def derive_seed(run_seed: int, prompt_id: str, index: int) -> int:
    """The seed of one sample: a hash of (run seed, prompt id, sample index), 31 bits so that
    servers with 32-bit seeds accept it.

    >>> derive_seed(0, "q1", 0) == derive_seed(0, "q1", 0) != derive_seed(0, "q1", 1)
    True
    """
    digest = hashlib.sha256(f"{run_seed}\0{prompt_id}\0{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def request_body(
    prompt: Prompt,
    model: ModelConfig,
    *,
    model_name: str,
    seed: int | None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The chat-completions body for one sample (``n`` is added by the caller when used).
    ``parameters``: :func:`sampling_parameters` of ``model``, when the caller has them."""
    body: dict[str, Any] = {"model": model_name, "messages": prompt.messages}
    body.update(sampling_parameters(model) if parameters is None else parameters)
    tools = prompt.tools if prompt.tools is not None else model.tools
    if tools is not None:
        body["tools"] = tools
    if seed is not None and model.send_seed:
        body["seed"] = seed
    if model.extra_body:
        body.update(model.extra_body)
    return body


def sampling_parameters(model: ModelConfig) -> dict[str, Any]:
    """The sampling parameters that are set, the same for every request of a run."""
    names = ("temperature", "top_p", "max_tokens", "stop", "tool_choice")
    return {name: getattr(model, name) for name in names if getattr(model, name) is not None}


@dataclass(frozen=True)
class Endpoint:
    """Where requests go, and the identity that goes into cache keys (a local model's URL has a
    random port, so its identity is its name instead)."""

    base_url: str
    model: str
    identity: str
    api_key_env: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.api_key_env is not None:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ConfigurationError(
                    f"config key 'model.api_key_env': the environment variable "
                    f"{self.api_key_env} is not set (it must hold the endpoint's API key)"
                )
            headers["authorization"] = f"Bearer {key}"
        return headers


@dataclass(frozen=True)
class Choice:
    """One generated reply."""

    content: str
    finish_reason: str | None
    tool_calls: list[Any] | None


@dataclass(frozen=True)
class Reply:
    """What one request finally produced: choices, or the status it failed with."""

    status: GenerationStatus
    choices: list[Choice]
    usage: dict[str, int] | None
    attempts: int
    error: str | None = None


class Generator:
    """Sends chat-completion requests under the run's limits. Use as an async context."""

    def __init__(
        self,
        *,
        endpoint: Endpoint,
        limits: LimitsConfig,
        max_tokens: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.limits = limits
        self.requests = 0
        self._max_tokens = max_tokens
        self._sleep = sleep
        self._url = f"{endpoint.base_url}/chat/completions"
        self._headers = endpoint.headers()
        self._rpm = TokenBucket(per_minute=limits.rpm, sleep=sleep) if limits.rpm else None
        self._tpm = TokenBucket(per_minute=limits.tpm, sleep=sleep) if limits.tpm else None
        self._session: Any = None
        self._aiohttp = require("aiohttp", extra="run", feature="rk run")
        self._orjson = require("orjson", extra="run", feature="rk run")

    async def __aenter__(self) -> Generator:
        aiohttp = self._aiohttp
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=self.limits.timeout),
            headers=self._headers,
            skip_auto_headers=("User-Agent",),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, body: Mapping[str, Any]) -> Reply:
        """One request with retries. Raises :class:`GenerationError` for a fatal failure."""
        data: bytes = self._orjson.dumps(body)
        limits = self.limits
        attempt = 0
        while True:
            attempt += 1
            try:
                choices, usage = await self._attempt(data)
            except GenerationError as error:
                if error.kind in FATAL_GENERATION_STATUSES:
                    raise
                retry_after = error.retry_after
                too_long = retry_after is not None and retry_after > limits.max_retry_after
                if (
                    error.kind not in RETRIED_GENERATION_STATUSES
                    or attempt >= limits.max_attempts
                    or too_long
                ):
                    message = error.message
                    if too_long:
                        message += f" (Retry-After {retry_after:g}s is over limits.max_retry_after)"
                    return Reply(error.kind, [], None, attempt, message)  # type: ignore[arg-type]
                await self._sleep(
                    retry_delay(
                        attempt - 1,
                        base=limits.backoff_base,
                        maximum=limits.backoff_max,
                        retry_after=retry_after,
                    )
                )
                continue
            return Reply("ok", choices, usage, attempt)

    async def _attempt(self, data: bytes) -> tuple[list[Choice], dict[str, int] | None]:
        if self._rpm is not None:
            await self._rpm.acquire()
        estimate = estimate_tokens(len(data), self._max_tokens)
        if self._tpm is not None:
            await self._tpm.acquire(estimate)
        self.requests += 1
        aiohttp = self._aiohttp
        try:
            async with self._session.post(self._url, data=data) as response:
                status = response.status
                raw = await response.read()
                headers = response.headers
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise GenerationError(
                f"no answer within limits.timeout ({self.limits.timeout:g}s)", kind="timeout"
            ) from None
        except aiohttp.ClientError as error:
            raise GenerationError(
                f"connection to {self.endpoint.base_url} failed: {type(error).__name__}: {error}",
                kind="connection",
            ) from None
        if status != 200:
            raise _status_error(status, raw, headers)
        choices, usage = self._parse(raw)
        if self._tpm is not None and usage:
            self._tpm.settle(estimate, float(usage.get("total_tokens") or estimate))
        return choices, usage

    def _parse(self, raw: bytes) -> tuple[list[Choice], dict[str, int] | None]:
        try:
            payload = self._orjson.loads(raw)
            choices = [_choice(c) for c in payload["choices"]]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            snippet = raw[:200].decode("utf-8", "replace")
            raise GenerationError(
                f"the endpoint answered 200 with an unreadable body ({type(error).__name__}): "
                f"{snippet!r}",
                kind="invalid_response",
            ) from None
        if not choices:
            raise GenerationError("the endpoint answered with no choices", kind="invalid_response")
        usage = payload.get("usage")
        if isinstance(usage, dict):
            usage = {
                k: int(v)
                for k, v in usage.items()
                if k in ("prompt_tokens", "completion_tokens", "total_tokens")
                and isinstance(v, (int, float))
            }
        else:
            usage = None
        return choices, usage


def _choice(raw: Any) -> Choice:
    message = raw["message"]
    content = message.get("content")
    tool_calls = message.get("tool_calls") or None
    if content is None and tool_calls is None:
        raise KeyError("message has neither content nor tool_calls")
    if content is not None and not isinstance(content, str):
        raise TypeError("content is not a string")
    return Choice(content or "", raw.get("finish_reason"), tool_calls)


def _status_error(status: int, raw: bytes, headers: Mapping[str, str]) -> GenerationError:
    text = raw[:2000].decode("utf-8", "replace")
    message = _error_message(text) or f"HTTP {status}"
    kind: GenerationStatus
    if status in (401, 403):
        kind = "auth"
        message = (
            f"the endpoint refused the credentials (HTTP {status}: {message}); check "
            "model.api_key_env and the key it names"
        )
    elif status == 404:
        kind = "not_found"
        message = (
            f"HTTP 404 from the endpoint ({message}); check model.base_url (it should end "
            "where /chat/completions is appended, e.g. .../v1) and model.name"
        )
    elif status == 429:
        kind = "rate_limit"
    elif status == 408:
        kind = "timeout"
    elif status >= 500 or status == 409:
        kind = "server"
    elif any(marker in text.lower() for marker in _CONTEXT_MARKERS):
        kind = "context_length"
    else:
        kind = "bad_request"
    if kind not in ("auth", "not_found"):
        message = f"HTTP {status}: {message}"
    retry_after = _retry_after(headers)
    return GenerationError(message, kind=kind, retry_after=retry_after)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = parse_retry_after(millis)
        if seconds is not None:
            return seconds / 1000.0
    return parse_retry_after(headers.get("retry-after"))


def _error_message(text: str) -> str:
    import json

    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
    return text.strip()[:300]
