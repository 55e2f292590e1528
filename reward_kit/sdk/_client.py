"""The blocking client. Behaviour lives in ``_core``; this file only does the I/O."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import httpx

from .._errors import PayloadTooLarge
from .._models import EvaluateResult
from .._vocabulary import RESERVED_ITEM_KEYS
from . import _core, _responses
from ._core import DEFAULT_MAX_BATCH_BYTES, DEFAULT_TIMEOUT, ClientConfig, Request
from ._replicas import Replicas, split_urls
from ._results import ItemResult

__all__ = ["EvaluatorClient", "build_config", "split_item"]


def build_config(url: str | Sequence[str] | None, **options: Any) -> ClientConfig:
    """A :class:`ClientConfig`. ``url``: one URL, several (a list, or separated by commas:
    replicas), or None for ``RK_EVALUATOR_URL``. ``auth``: a credential, sent to every
    replica; a plain string is an API key; None (or absent) means
    :func:`~reward_kit.sdk.auth.default_credential` for each URL (``RK_API_KEY``,
    ``auth.ini``...: https and loopback only, or a profile's own ``url``), read now, not at
    import; ``False`` or ``NoAuth()`` sends no credential at all."""
    from ._credentials import ApiKey, NoAuth

    urls = split_urls(url)
    auth = options.get("auth")
    if auth is None:
        from ._auth_profiles import default_credential

        found = tuple(default_credential(url=each) for each in urls)
        auth = found[0] if len(found) == 1 else None
        if len(found) > 1 and any(credential is not None for credential in found):
            options["replica_auth"] = found  # each replica gets what it alone would get
    elif auth is False or isinstance(auth, NoAuth):
        auth = None
    elif isinstance(auth, str):
        auth = ApiKey(auth)
    elif auth is True:
        raise TypeError(
            "auth=True is not a credential: pass one from reward_kit.sdk.auth, an API key "
            "string, None (the default credential) or False (none)"
        )
    options["auth"] = auth
    return ClientConfig(url=",".join(urls), **{k: v for k, v in options.items() if v is not None})


class EvaluatorClient:
    """Call a reward-kit evaluator from blocking code.

    ``url``: the evaluator, or several replicas of it (a list, or URLs separated by commas;
    None reads ``RK_EVALUATOR_URL``): batches are sharded across the healthy ones, single
    requests go round-robin, and a request a replica fails moves to another.
    ``auth``: a credential from :mod:`reward_kit.sdk.auth`, an API key string, None for
    :func:`~reward_kit.sdk.auth.default_credential` (env ``RK_API_KEY``..., ``auth.ini``; sent
    implicitly only over https or to loopback), or ``False`` to send none.

    >>> with EvaluatorClient("http://127.0.0.1:8000", auth=ApiKey(key)) as client:  # doctest: +SKIP
    ...     client.evaluate([{"role": "user", "content": "2+2?"},
    ...                      {"role": "assistant", "content": "4"}], "4", function="exact").score
    1.0
    """

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        *,
        auth: httpx.Auth | str | Literal[False] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        max_batch_items: int = 10_000,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_concurrency: int = 4,
        max_retry_after: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.config = build_config(
            url,
            auth=auth,
            timeout=timeout,
            max_retries=max_retries,
            max_batch_items=max_batch_items,
            max_batch_bytes=max_batch_bytes,
            max_concurrency=max_concurrency,
            max_retry_after=max_retry_after,
            transport=transport,
            headers=headers,
        )
        self._open()

    @classmethod
    def from_config(cls, config: ClientConfig) -> EvaluatorClient:
        client = cls.__new__(cls)
        client.config = config
        client._open()
        return client

    def _open(self) -> None:
        self._replicas = Replicas(self.config)
        self._http = [
            httpx.Client(**self.config.httpx_options(i)) for i in range(len(self._replicas))
        ]

    def __enter__(self) -> EvaluatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for http in self._http:
            http.close()

    def _send(self, request: Request, replica: int | None = None) -> httpx.Response:
        """Send with retries, on ``replica`` first when it is healthy (see ``_replicas``)."""
        index = self._replicas.first(replica)
        for attempt in range(self.config.max_retries + 1):
            try:
                response = self._http[index].request(
                    request.method,
                    request.path,
                    content=request.content,
                    headers={"content-type": "application/json"} if request.content else None,
                )
            except httpx.TransportError as error:
                interrupt = _responses.from_signal_handler(error)
                if interrupt is not None:  # the caller's own timer: never retried
                    raise interrupt from None
                failure = _responses.transport_error(error, self.config.urls[index])
            else:
                if response.is_success:
                    self._replicas.succeeded(index)
                    return response
                failure = _responses.response_error(response)
            step = self._replicas.next_attempt(attempt, index, failure)
            if step is None:
                raise failure.error
            index, delay = step
            if delay > 0:  # 0: another replica, at once
                time.sleep(delay)
        raise AssertionError("unreachable: the last attempt either returns or raises")

    def health(self) -> dict[str, Any]:
        """The server's ``GET /health`` answer (status, version, functions...)."""
        return dict(_responses.parse_json(self._send(Request("GET", "/health"))))

    def functions(self) -> list[dict[str, Any]]:
        """What each served reward function is (name, doc, timeout, isolation...)."""
        return list(_responses.parse_json(self._send(Request("GET", "/functions")))["functions"])

    def evaluate(
        self,
        messages: Sequence[Any],
        ground_truth: Any = None,
        *,
        function: str | None = None,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> EvaluateResult:
        """Score one conversation; the function's failure raises its typed error."""
        item = _core.make_item(messages, ground_truth, tools=tools, kwargs=kwargs)
        return _responses.parse_evaluate(self._send(self.config.evaluate_request(item, function)))

    def batch_evaluate(
        self, items: Iterable[Mapping[str, Any]], *, function: str | None = None
    ) -> list[ItemResult]:
        """Score many items (``{"messages", "ground_truth", "tools", "kwargs"}`` dicts, as made
        by :func:`make_item`); one :class:`ItemResult` per item, in input order. With several
        replicas each gets a shard; ``max_concurrency`` requests per replica are in flight."""
        return self._batch_encoded(
            [_core.dumps(_core.make_item(**split_item(item))) for item in items], function
        )

    def _batch_encoded(self, encoded: list[bytes], function: str | None) -> list[ItemResult]:
        """:meth:`batch_evaluate` of items already made and encoded (the trainer adapters
        encode each item once, to find the ones that cannot be sent)."""
        plan = self._replicas.plan(encoded)
        workers = min(self.config.max_concurrency * len(self._http), len(plan))
        if workers <= 1:
            parts = [self._chunk(encoded, chunk, function, replica) for replica, chunk in plan]
        else:
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(lambda p: self._chunk(encoded, p[1], function, p[0]), plan))
        return _responses.assemble(len(encoded), parts)

    def _chunk(
        self, encoded: list[bytes], chunk: range, function: str | None, replica: int
    ) -> list[ItemResult]:
        request = self.config.batch_request(encoded[chunk.start : chunk.stop], function)
        try:
            return _responses.parse_batch(self._send(request, replica), chunk)
        except PayloadTooLarge as error:
            # The server's limit is below ours: halve until it fits; a lone item fails alone.
            if len(chunk) == 1:
                return _responses.oversize_results(chunk, error)
            halves = _responses.halves(chunk)
            return [r for half in halves for r in self._chunk(encoded, half, function, replica)]


def split_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Accept wire-shaped items; unknown top-level keys become kwargs, as on the server."""
    if "messages" not in item:
        raise ValueError("each batch item needs 'messages'")
    kwargs = dict(item.get("kwargs") or {})
    kwargs.update({k: v for k, v in item.items() if k not in RESERVED_ITEM_KEYS})
    return {
        "messages": item["messages"],
        "ground_truth": item.get("ground_truth"),
        "tools": item.get("tools"),
        "kwargs": kwargs,
        "function": item.get("function"),
    }
