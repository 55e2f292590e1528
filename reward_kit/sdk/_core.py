"""The I/O-free core shared by :class:`EvaluatorClient` and :class:`AsyncEvaluatorClient`.

Everything that decides *what* to send and *what an answer means* lives here: request
building, splitting a batch by items and bytes, retry decisions, and response parsing. The two
clients only do the I/O (httpx.Client against httpx.AsyncClient, time.sleep against
asyncio.sleep), so they cannot drift apart on behaviour (the httpx/BentoML pattern).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

from .._errors import (
    RewardKitError,
)
from .._retry import retry_delay
from .._version import __version__
from .._vocabulary import DEFAULT_REQUEST_TIMEOUT
from ._replicas import split_urls

orjson: Any = None
# orjson is ~3x faster on large batches, but the base install must not need it.
with contextlib.suppress(ImportError):
    import orjson

__all__ = ["DEFAULT_TIMEOUT", "ClientConfig", "Failure", "Request", "dumps", "loads", "make_item"]

logger = logging.getLogger("reward_kit.sdk")

DEFAULT_TIMEOUT = DEFAULT_REQUEST_TIMEOUT  # seconds per HTTP response (not an item deadline)
# A batch is one request; its size limit must stay under the server's 16 MiB default with room
# for the envelope. A smaller server limit is handled by splitting on 413 (see split_on_413).
DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Connect failures never reached the server. Read timeouts and dropped or reset connections
# may have: retrying is still safe because an evaluation has no side effects on the server.
# A server that restarts (SIGKILL, or SIGTERM closing keep-alive connections) resets the
# connections whose request it had not read yet: ReadError/WriteError "Connection reset by peer".
RETRY_EXCEPTIONS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.PoolTimeout,
)


def dumps(value: Any) -> bytes:
    """JSON-encode with orjson when installed, else the stdlib; both accept numpy values and
    anything with ``.tolist()``, and both raise TypeError for the rest."""
    if orjson is not None:
        return bytes(orjson.dumps(value, default=_builtin, option=orjson.OPT_SERIALIZE_NUMPY))
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_builtin).encode()


def _builtin(value: Any) -> Any:
    # numpy arrays and scalars (verl's extra_info, datasets columns) without importing numpy
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def loads(body: bytes) -> Any:
    return orjson.loads(body) if orjson is not None else json.loads(body)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """pydantic models (Message, EvaluateResult...) become dicts; the rest passes through."""
    # Plain JSON values first: hasattr() on a str costs more than the rest, and a TRL batch is
    # thousands of them.
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {k: v if type(v) in _SCALARS else _plain(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _SCALARS else _plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def make_item(
    messages: Sequence[Any],
    ground_truth: Any = None,
    *,
    tools: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    function: str | None = None,
) -> dict[str, Any]:
    """One wire item. ``kwargs`` travel in their own field so no column name can clash with
    ``messages``/``function``.

    >>> make_item([{"role": "user", "content": "hi"}], "x")
    {'messages': [{'role': 'user', 'content': 'hi'}], 'ground_truth': 'x'}
    """
    item: dict[str, Any] = {"messages": _plain(list(messages))}
    if ground_truth is not None:
        item["ground_truth"] = _plain(ground_truth)
    if tools is not None:
        item["tools"] = _plain(list(tools))
    if kwargs:
        item["kwargs"] = _plain(dict(kwargs))
    if function is not None:  # per-item routing inside a batch
        item["function"] = function
    return item


class Request(NamedTuple):
    method: str
    path: str
    content: bytes | None = None


class Failure(NamedTuple):
    """One failed attempt: the typed error to raise, and whether another attempt may help."""

    error: RewardKitError
    retryable: bool


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Everything a client is built from. Plain data, so a TRL reward holding one pickles.

    ``transport`` is the one runtime part: an ``httpx`` transport holds sockets and an SSL
    context, which cannot cross processes. Pickling drops it, so a copy in another process
    (TRL's AsyncGRPOTrainer, verl's Ray workers) uses httpx's default transport; TLS options
    travel with the credential (``auth``) instead.

    ``url`` may name several replicas, separated by commas (``urls`` lists them; see
    ``_replicas``). ``auth`` goes to every replica, unless ``replica_auth`` gives each its
    own, in ``urls`` order (the default credential is looked up per URL).
    """

    url: str
    auth: httpx.Auth | None = None
    replica_auth: tuple[httpx.Auth | None, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = 10.0
    max_retries: int = 5
    max_batch_items: int = 10_000
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    max_concurrency: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # A Retry-After above this means "not soon": give up with the typed error at once rather
    # than stall a training step for longer than our own longest backoff would.
    max_retry_after: float = 30.0
    transport: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        urls = split_urls(self.url)
        if len(urls) > 1:  # one spelling, so equal configs compare equal
            object.__setattr__(self, "url", ",".join(urls))
        if self.replica_auth and (len(self.replica_auth) != len(urls) or self.auth is not None):
            raise ValueError(
                f"replica_auth: expected one credential per URL ({len(urls)}) and no auth, "
                f"got {len(self.replica_auth)}"
            )
        for name in ("max_batch_items", "max_batch_bytes", "max_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        for name in ("backoff_base", "backoff_max", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if state.get("transport") is not None:
            logger.warning(
                "reward-kit: the custom transport of the client for %s is not pickled; the "
                "copy uses httpx's default transport",
                self.url,
            )
            state["transport"] = None
        return state

    @property
    def urls(self) -> tuple[str, ...]:
        """The replicas' base URLs (one for a single evaluator)."""
        return split_urls(self.url)

    def httpx_options(self, replica: int = 0) -> dict[str, Any]:
        """Keyword arguments for the ``httpx.Client`` / ``httpx.AsyncClient`` of replica
        number ``replica`` (of :attr:`urls`)."""
        auth = self.replica_auth[replica] if self.replica_auth else self.auth
        options: dict[str, Any] = {
            "base_url": self.urls[replica],
            "timeout": httpx.Timeout(self.timeout, connect=min(self.connect_timeout, self.timeout)),
            "headers": {"user-agent": f"reward-kit/{__version__}", **self.headers},
            "auth": auth,
        }
        if self.transport is not None:
            options["transport"] = self.transport
        client_options = getattr(auth, "client_options", None)
        if callable(client_options):  # reward-kit credentials may set verify= (mutual TLS)
            options.update(client_options())
        return options

    # -- requests --------------------------------------------------------------------------

    def evaluate_request(self, item: dict[str, Any], function: str | None) -> Request:
        path = f"/evaluate/{quote(function, safe='')}" if function else "/evaluate"
        return Request("POST", path, dumps(item))

    def batch_request(self, encoded: Sequence[bytes], function: str | None) -> Request:
        # Items are encoded once, up front, so splitting knows exact sizes and a retry or a
        # split re-sends the same bytes instead of re-encoding.
        body = b'{"items":[' + b",".join(encoded) + b"]"
        if function:
            body += b',"function":' + dumps(function)
        return Request("POST", "/batch_evaluate", body + b"}")

    def plan_chunks(self, encoded: Sequence[bytes], within: range | None = None) -> list[range]:
        """Contiguous slices of ``within`` (default: all of ``encoded``) within
        ``max_batch_items`` and ``max_batch_bytes``, in order. An item larger than the byte
        limit alone still gets its own chunk: the server decides.
        """
        span = range(len(encoded)) if within is None else within
        chunks: list[range] = []
        start, size = span.start, 0
        overhead = 64  # the envelope and a function name
        for index in span:
            item = encoded[index]
            full = index - start >= self.max_batch_items
            if index > start and (full or size + len(item) + 1 + overhead > self.max_batch_bytes):
                chunks.append(range(start, index))
                start, size = index, 0
            size += len(item) + 1
        if start < span.stop:
            chunks.append(range(start, span.stop))
        return chunks

    # -- retries ---------------------------------------------------------------------------

    def retry_delay(
        self, attempt: int, failure: Failure, *, uniform: Any = random.uniform
    ) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up now.

        Exponential backoff with "equal jitter" (:func:`reward_kit._retry.retry_delay`): a
        random wait between half and all of ``min(backoff_max, backoff_base * 2**attempt)``, so
        clients that failed together do not retry together. A ``Retry-After`` from the server
        is a floor under it (jittered above); one above ``max_retry_after`` gives up at once.
        ``uniform`` is for tests.

        >>> from reward_kit import EvaluatorUnavailable
        >>> config = ClientConfig(url="http://h", backoff_base=0.5)
        >>> config.retry_delay(2, Failure(EvaluatorUnavailable("down"), True), uniform=max)
        2.0
        """
        if attempt >= self.max_retries or not failure.retryable:
            return None
        retry_after = failure.error.retry_after
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        return retry_delay(
            attempt,
            base=self.backoff_base,
            maximum=self.backoff_max,
            retry_after=retry_after,
            uniform=uniform,
        )
