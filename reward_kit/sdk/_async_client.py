"""The asyncio client: the twin of ``_client.EvaluatorClient`` over the same ``_core``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import httpx

from .._errors import PayloadTooLarge
from .._models import EvaluateResult
from . import _core, _responses
from ._client import build_config, split_item
from ._core import DEFAULT_MAX_BATCH_BYTES, DEFAULT_TIMEOUT, ClientConfig, Request
from ._replicas import Replicas
from ._results import ItemResult

__all__ = ["AsyncEvaluatorClient"]


class AsyncEvaluatorClient:
    """Call a reward-kit evaluator from asyncio code. ``url`` (one evaluator or several
    replicas) and ``auth`` are as for :class:`EvaluatorClient` (None: the default credential;
    ``False``: none).

    >>> async with AsyncEvaluatorClient(url, auth=ApiKey(key)) as client:  # doctest: +SKIP
    ...     results = await client.batch_evaluate(items, function="exact")
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
        transport: httpx.AsyncBaseTransport | None = None,
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
    def from_config(cls, config: ClientConfig) -> AsyncEvaluatorClient:
        client = cls.__new__(cls)
        client.config = config
        client._open()
        return client

    def _open(self) -> None:
        self._replicas = Replicas(self.config)
        self._http = [
            httpx.AsyncClient(**self.config.httpx_options(i)) for i in range(len(self._replicas))
        ]

    async def __aenter__(self) -> AsyncEvaluatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for http in self._http:
            await http.aclose()

    async def _send(self, request: Request, replica: int | None = None) -> httpx.Response:
        """Send with retries, on ``replica`` first when it is healthy (see ``_replicas``)."""
        index = self._replicas.first(replica)
        for attempt in range(self.config.max_retries + 1):
            try:
                response = await self._http[index].request(
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
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt either returns or raises")

    async def health(self) -> dict[str, Any]:
        """The server's ``GET /health`` answer (status, version, functions...)."""
        return dict(_responses.parse_json(await self._send(Request("GET", "/health"))))

    async def functions(self) -> list[dict[str, Any]]:
        """What each served reward function is (name, doc, timeout, isolation...)."""
        return list(
            _responses.parse_json(await self._send(Request("GET", "/functions")))["functions"]
        )

    async def evaluate(
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
        response = await self._send(self.config.evaluate_request(item, function))
        return _responses.parse_evaluate(response)

    async def batch_evaluate(
        self, items: Iterable[Mapping[str, Any]], *, function: str | None = None
    ) -> list[ItemResult]:
        """Score many items; one :class:`ItemResult` per item, in input order. Chunks go out
        at most ``max_concurrency`` per replica at a time (a few large requests beat many small
        ones); with several replicas each gets a shard."""
        return await self._batch_encoded(
            [_core.dumps(_core.make_item(**split_item(item))) for item in items], function
        )

    async def _batch_encoded(self, encoded: list[bytes], function: str | None) -> list[ItemResult]:
        """:meth:`batch_evaluate` of items already made and encoded (see the sync twin)."""
        plan = self._replicas.plan(encoded)
        if len(plan) == 1:  # one request (a TRL step's batch): no tasks to schedule
            replica, chunk = plan[0]
            return _responses.assemble(
                len(encoded), [await self._chunk(encoded, chunk, function, replica)]
            )
        gate = asyncio.Semaphore(self.config.max_concurrency * len(self._http))

        async def run(replica: int, chunk: range) -> list[ItemResult]:
            async with gate:
                return await self._chunk(encoded, chunk, function, replica)

        tasks = [asyncio.ensure_future(run(replica, chunk)) for replica, chunk in plan]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one chunk failed for good: stop sending the rest
                task.cancel()
            raise
        return _responses.assemble(len(encoded), parts)

    async def _chunk(
        self, encoded: list[bytes], chunk: range, function: str | None, replica: int
    ) -> list[ItemResult]:
        request = self.config.batch_request(encoded[chunk.start : chunk.stop], function)
        try:
            return _responses.parse_batch(await self._send(request, replica), chunk)
        except PayloadTooLarge as error:
            if len(chunk) == 1:
                return _responses.oversize_results(chunk, error)
            results: list[ItemResult] = []
            for half in _responses.halves(chunk):
                results.extend(await self._chunk(encoded, half, function, replica))
            return results
