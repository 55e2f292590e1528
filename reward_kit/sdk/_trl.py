"""TRL reward functions backed by a remote evaluator (GRPOTrainer, RLOOTrainer...).

TRL calls a reward function with keywords only: ``prompts``, ``completions``,
``completion_ids``, every dataset column except ``prompt``, plus ``trainer_state``,
``log_extra``, ``log_metric`` (and ``environments``). It wants one float or ``None`` per
completion; ``None`` means "no reward here" and an all-``None`` row is left out of the
baseline (TRL >= 1.6). So a failed item is ``None``, never 0.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import httpx

from .._errors import EvaluatorUnavailable, Overloaded
from . import _core
from ._async_client import AsyncEvaluatorClient
from ._client import EvaluatorClient, build_config
from ._core import ClientConfig
from ._results import ItemResult

__all__ = ["SyncTRLReward", "TRLReward", "trl_reward", "trl_reward_sync"]

logger = logging.getLogger("reward_kit.sdk")

OnError = Literal["none", "raise"]
# Keywords TRL adds that are not dataset columns (and must never be sent as kwargs).
_TRL_KEYWORDS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


class _RemoteReward:
    """What the sync and async TRL rewards share: turning TRL's call into items and results
    back into rewards. Holds only plain data, so it pickles (AsyncGRPOTrainer sends reward
    functions to another process); the HTTP client is made on first use, there."""

    def __init__(
        self,
        target: str | EvaluatorClient | AsyncEvaluatorClient | ClientConfig,
        *,
        function: str,
        ground_truth_column: str | None = "solution",
        columns: Sequence[str] | None = None,
        on_error: OnError = "none",
        name: str | None = None,
        auth: httpx.Auth | str | None = None,
    ) -> None:
        if on_error not in ("none", "raise"):
            raise ValueError(f"on_error must be 'none' or 'raise', got {on_error!r}")
        if isinstance(target, (EvaluatorClient, AsyncEvaluatorClient)):
            target = target.config
        if not isinstance(target, ClientConfig):
            target = build_config(target, auth=auth)
        self.config = target
        self.function = function
        self.ground_truth_column = ground_truth_column
        self.columns = None if columns is None else tuple(columns)
        self.on_error = on_error
        # TRL logs rewards/<__name__>/mean; a callable instance has no __name__ of its own.
        self.__name__ = name or function
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.url!r}, function={self.function!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_client_obj", "_loop", "_lock"):  # live connections never cross processes
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _items(
        self, prompts: Sequence[Any], completions: Sequence[Any], columns: dict[str, Any]
    ) -> list[dict[str, Any]]:
        count = len(completions)
        if len(prompts) != count:
            raise ValueError(f"{len(prompts)} prompts for {count} completions")
        truths: Sequence[Any] = [None] * count
        if self.ground_truth_column is not None and self.ground_truth_column in columns:
            truths = columns[self.ground_truth_column]
        names = (
            self.columns
            if self.columns is not None
            else [k for k in columns if k not in _TRL_KEYWORDS and k != self.ground_truth_column]
        )
        missing = [n for n in names if n not in columns]
        if missing:
            raise KeyError(
                f"dataset column(s) {missing} not passed by the trainer; "
                f"columns it passed: {sorted(set(columns) - _TRL_KEYWORDS)}"
            )
        return [
            _core.make_item(
                _as_messages(prompt, "user") + _as_messages(completion, "assistant"),
                truths[i],
                kwargs={n: columns[n][i] for n in names},
            )
            for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True))
        ]

    def _rewards(self, results: list[ItemResult], hooks: dict[str, Any]) -> list[float | None]:
        rewards = [r.score for r in results]
        log_metric: Callable[[str, float], None] | None = hooks.get("log_metric")
        log_extra: Callable[[str, list[Any]], None] | None = hooks.get("log_extra")
        if log_metric is not None:
            metrics: dict[str, list[float]] = {}
            for r in results:
                if r.result is not None and r.ok:
                    for key, metric in r.result.metrics.items():
                        if metric.is_score_valid:
                            metrics.setdefault(key, []).append(metric.score)
            for key, values in metrics.items():
                log_metric(f"{self.__name__}/{key}", sum(values) / len(values))
            log_metric(f"{self.__name__}/failed", rewards.count(None) / max(1, len(rewards)))
        if log_extra is not None:
            log_extra(f"{self.__name__}/reason", [_reason(r) for r in results])
        return rewards

    def _unavailable(self, error: Exception, count: int) -> list[float | None]:
        # Only a whole-evaluator outage gets here. A wrong key, an unknown function or a
        # malformed request is raised by the caller regardless: it never heals by itself.
        if self.on_error == "raise":
            raise error
        logger.warning(
            "%s: evaluator unavailable, %d rewards are None: %s", self.__name__, count, error
        )
        return [None] * count


class TRLReward(_RemoteReward):
    """An ``async`` TRL reward function; TRL awaits it next to its other async rewards."""

    async def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        items = self._items(prompts, completions, kwargs)
        try:
            results = await self._client().batch_evaluate(items, function=self.function)
        except (EvaluatorUnavailable, Overloaded) as error:
            return self._unavailable(error, len(items))
        return self._rewards(results, kwargs)

    def _client(self) -> AsyncEvaluatorClient:
        # An httpx.AsyncClient's connections belong to the loop that opened them; TRL keeps one
        # daemon loop, but a caller using asyncio.run() per call gets a fresh client per loop.
        loop = asyncio.get_running_loop()
        if getattr(self, "_loop", None) is not loop:
            self._client_obj = AsyncEvaluatorClient.from_config(self.config)
            self._loop = loop
        return self._client_obj

    async def aclose(self) -> None:
        client = self.__dict__.pop("_client_obj", None)
        self.__dict__.pop("_loop", None)
        if client is not None:
            await client.aclose()


class SyncTRLReward(_RemoteReward):
    """The blocking twin of :class:`TRLReward`, for code that cannot take a coroutine."""

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        items = self._items(prompts, completions, kwargs)
        try:
            results = self._client().batch_evaluate(items, function=self.function)
        except (EvaluatorUnavailable, Overloaded) as error:
            return self._unavailable(error, len(items))
        return self._rewards(results, kwargs)

    def _client(self) -> EvaluatorClient:
        with self._lock:
            if "_client_obj" not in self.__dict__:
                self._client_obj = EvaluatorClient.from_config(self.config)
        return self._client_obj

    def close(self) -> None:
        client = self.__dict__.pop("_client_obj", None)
        if client is not None:
            client.close()


def trl_reward(
    url_or_client: str | EvaluatorClient | AsyncEvaluatorClient,
    *,
    function: str,
    ground_truth_column: str | None = "solution",
    columns: Sequence[str] | None = None,
    on_error: OnError = "none",
    name: str | None = None,
    auth: httpx.Auth | str | None = None,
) -> TRLReward:
    """An async, picklable TRL reward that scores each generation batch in one request.

    >>> reward = trl_reward("http://127.0.0.1:8000", function="exact_match",
    ...                     auth=ApiKey(os.environ["RK_API_KEY"]))  # doctest: +SKIP
    >>> GRPOTrainer(model=..., reward_funcs=[reward], ...)  # doctest: +SKIP
    """
    return TRLReward(
        url_or_client,
        function=function,
        ground_truth_column=ground_truth_column,
        columns=columns,
        on_error=on_error,
        name=name,
        auth=auth,
    )


def trl_reward_sync(
    url_or_client: str | EvaluatorClient | AsyncEvaluatorClient,
    *,
    function: str,
    ground_truth_column: str | None = "solution",
    columns: Sequence[str] | None = None,
    on_error: OnError = "none",
    name: str | None = None,
    auth: httpx.Auth | str | None = None,
) -> SyncTRLReward:
    """Like :func:`trl_reward`, with a blocking ``__call__``."""
    return SyncTRLReward(
        url_or_client,
        function=function,
        ground_truth_column=ground_truth_column,
        columns=columns,
        on_error=on_error,
        name=name,
        auth=auth,
    )


def _as_messages(value: Any, role: str) -> list[Any]:
    """Standard format is a string; conversational format is already a message list."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return list(value)


def _reason(result: ItemResult) -> str:
    if result.error is not None:
        return f"error {result.error.code}: {result.error.message}"
    if result.result is not None and not result.result.is_score_valid:
        return f"invalid score: {result.result.reason or ''}"
    return (result.result.reason or "") if result.result is not None else ""
