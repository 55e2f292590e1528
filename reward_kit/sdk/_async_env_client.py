"""The asyncio environment client: the twin of ``_env_client`` over the same ``_env_core``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from .._errors import RewardKitError
from . import _env_core, _responses
from ._core import DEFAULT_TIMEOUT, ClientConfig, Request
from ._env_client import env_config
from ._env_core import SessionEvaluation, SessionInfo, StepResult

__all__ = ["AsyncEnvClient", "AsyncEnvSession"]


class AsyncEnvClient:
    """Drive a reward-kit server's environments from asyncio code.

    ``url`` (None reads ``RK_EVALUATOR_URL``) and ``auth`` are as for
    :class:`~reward_kit.sdk.EvaluatorClient`. Requests are retried with backoff, except that
    creating a session and taking a step are repeated only when the server certainly did not
    act (connection refused, 429 at capacity).

    >>> async with AsyncEnvClient(url, auth=key) as client:  # doctest: +SKIP
    ...     async with await client.session("guess_number", seed=7) as session:
    ...         step = await session.step([("guess", {"n": 50})])
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        auth: httpx.Auth | str | Literal[False] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        max_retry_after: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.config = env_config(
            url,
            auth=auth,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_after=max_retry_after,
            transport=transport,
            headers=headers,
        )
        self._http = httpx.AsyncClient(**self.config.httpx_options())

    @classmethod
    def from_config(cls, config: ClientConfig) -> AsyncEnvClient:
        """A client from an existing configuration (e.g. one that crossed a process)."""
        client = cls.__new__(cls)
        client.config = config
        client._http = httpx.AsyncClient(**config.httpx_options())
        return client

    async def __aenter__(self) -> AsyncEnvClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (open sessions stay open on the server until closed or reaped)."""
        await self._http.aclose()

    async def _send(self, request: Request) -> httpx.Response:
        for attempt in range(self.config.max_retries + 1):
            error: BaseException | None = None
            try:
                response = await self._http.request(
                    request.method,
                    request.path,
                    content=request.content,
                    headers={"content-type": "application/json"} if request.content else None,
                )
            except httpx.TransportError as caught:
                interrupt = _responses.from_signal_handler(caught)
                if interrupt is not None:  # the caller's own timer: never retried
                    raise interrupt from None
                error = caught
                failure = _responses.transport_error(caught, self.config.url)
            else:
                if response.is_success:
                    return response
                failure = _responses.response_error(response)
            failure = _env_core.safe_to_repeat(request, failure, error)
            delay = self.config.retry_delay(attempt, failure)
            if delay is None:
                raise failure.error
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt either returns or raises")

    async def list_envs(self) -> list[dict[str, Any]]:
        """The served environments: name, description, tools and limits."""
        payload = _env_core.parse_object(await self._send(Request("GET", "/envs")))
        return list(payload.get("envs") or [])

    async def describe(self, env: str) -> dict[str, Any]:
        """One environment: its tool schemas (OpenAI function format) and limits."""
        return _env_core.parse_object(await self._send(_env_core.describe_request(env)))

    async def session(
        self, env: str, *, task: Any = None, seed: int | None = None, group_id: str | None = None
    ) -> AsyncEnvSession:
        """Open a session of ``env``. The same ``seed`` (or ``group_id``) gives the same start.
        Close it (``async with`` does) or the server's idle reaper will."""
        request = _env_core.create_request(env, task=task, seed=seed, group_id=group_id)
        return AsyncEnvSession(
            client=self, info=_env_core.parse_session(env, await self._send(request))
        )


class AsyncEnvSession:
    """One open session: ``step`` it with tool calls, read its ``state``, ``evaluate`` it and
    ``aclose`` it (idempotent; ``async with`` closes it)."""

    def __init__(self, *, client: AsyncEnvClient, info: SessionInfo) -> None:
        self.client = client
        self.info = info
        self.done = False
        self.closed = False
        self._ids = itertools.count(1)
        self._used: set[str] = set()
        self._lock = asyncio.Lock()

    @property
    def session_id(self) -> str:
        """The server's id for this session."""
        return self.info.session_id

    @property
    def observation(self) -> str:
        """The first observation (the environment's ``reset``)."""
        return self.info.observation

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tool schemas the model may call, in OpenAI function format."""
        return list(self.info.tools)

    async def __aenter__(self) -> AsyncEnvSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def step(self, tool_calls: Sequence[Any]) -> StepResult:
        """Run one step: OpenAI tool calls (or ``(name, arguments)`` pairs) in order."""
        calls = _env_core.tool_calls_of(tool_calls, self._ids, self._used)
        request = _env_core.step_request(self.info.env, self.session_id, calls)
        result = _env_core.parse_step(await self.client._send(request), calls)
        self.done = result.done
        return result

    async def state(self) -> dict[str, Any]:
        """Status, step, reward so far and state hash."""
        request = _env_core.state_request(self.info.env, self.session_id)
        return _env_core.parse_object(await self.client._send(request))

    async def evaluate(
        self,
        messages: Sequence[Any] | None = None,
        *,
        function: str | None = None,
        ground_truth: Any = None,
        **kwargs: Any,
    ) -> SessionEvaluation:
        """The environment's score, with one ``step_outputs`` entry per step. With
        ``messages`` (the transcript), its tool messages are checked against the server's
        ledger of executed calls (``verification``). ``function`` scores with a served
        ``@reward_function`` instead, given the session's ``env_state`` and ``tool_ledger``."""
        request = _env_core.evaluate_request(
            self.info.env,
            self.session_id,
            messages,
            function=function,
            ground_truth=ground_truth,
            kwargs=kwargs,
        )
        return _env_core.parse_evaluation(await self.client._send(request))

    async def aclose(self) -> None:
        """End the session and its process on the server; safe to repeat."""
        async with self._lock:
            if self.closed:
                return
            try:
                await self.client._send(_env_core.delete_request(self.info.env, self.session_id))
            except RewardKitError as error:
                # 410: already closed, reaped or expired; 404: the server restarted. Gone anyway.
                if error.status not in (404, 410):
                    raise
            self.closed = True
