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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import httpx

from .._errors import Overloaded, RequestRejected
from . import _core
from ._async_client import AsyncEvaluatorClient
from ._client import EvaluatorClient, build_config
from ._core import ClientConfig
from ._results import ItemResult
from ._trl_env import RemoteEnvironment, remote_environment

__all__ = [
    "AsyncTRLReward",
    "RemoteEnvironment",
    "TRLReward",
    "TRL_KEYWORDS",
    "conversation",
    "remote_environment",
    "trl_reward",
    "trl_reward_sync",
]

logger = logging.getLogger("reward_kit.sdk")

OnError = Literal["none", "raise"]
# Keywords TRL adds that are not dataset columns (and must never be sent as kwargs).
TRL_KEYWORDS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


class _RemoteReward:
    """What the sync and async TRL rewards share: turning TRL's call into items and results
    back into rewards. Holds only plain data, so it pickles (AsyncGRPOTrainer sends reward
    functions to another process); the HTTP client is made on first use, there."""

    def __init__(
        self,
        target: str | Sequence[str] | EvaluatorClient | AsyncEvaluatorClient | ClientConfig,
        *,
        function: str,
        ground_truth_column: str | None = "solution",
        columns: Sequence[str] | None = None,
        on_error: OnError = "none",
        name: str | None = None,
        auth: httpx.Auth | str | Literal[False] | None = None,
    ) -> None:
        if on_error not in ("none", "raise"):
            raise ValueError(f"on_error must be 'none' or 'raise', got {on_error!r}")
        if isinstance(target, (EvaluatorClient, AsyncEvaluatorClient)):
            target = target.config
        if isinstance(target, ClientConfig) and auth is not None:
            # It would be silently dropped: the client's own credential is used.
            raise TypeError(
                "auth: not accepted with a client or ClientConfig, which carries its own; "
                "set it on the client, or pass a URL"
            )
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
        # Live connections never cross processes; ClientConfig drops its transport itself.
        state = self.__dict__.copy()
        for key in ("_client_obj", "_loop", "_lock"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _prepare(
        self, prompts: Sequence[Any], completions: Sequence[Any], columns: dict[str, Any]
    ) -> _Batch:
        """The items to send, and the reason for each completion that cannot be sent."""
        count = len(completions)
        truths: Sequence[Any] = [None] * count
        if self.ground_truth_column is not None and self.ground_truth_column in columns:
            truths = columns[self.ground_truth_column]
        names = (
            self.columns
            if self.columns is not None
            else [k for k in columns if k not in TRL_KEYWORDS and k != self.ground_truth_column]
        )
        missing = [n for n in names if n not in columns]
        if missing:
            raise KeyError(
                f"dataset column(s) {missing} not passed by the trainer; "
                f"columns it passed: {sorted(set(columns) - TRL_KEYWORDS)}"
            )
        items = [
            _core.make_item(
                conversation(prompt, completion),
                truths[i],
                kwargs={n: columns[n][i] for n in names},
            )
            for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True))
        ]
        batch = _Batch(items)
        batch.find_unencodable(self.ground_truth_column)
        if batch.skipped and self.on_error == "raise":
            index, cause = next(iter(batch.skipped.items()))
            raise TypeError(f"completion {index}: {cause}")
        return batch

    def _check_call(
        self, prompts: Sequence[Any], completions: Sequence[Any], columns: dict[str, Any]
    ) -> None:
        """Bugs in the training script, not evaluator failures: they raise whatever
        ``on_error`` says (None rewards would hide them for a whole run)."""
        for label, value in (("prompts", prompts), ("completions", completions)):
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
                raise TypeError(f"{label}: expected a list, got {type(value).__name__}")
        count = len(completions)
        if len(prompts) != count:
            raise ValueError(f"{len(prompts)} prompts for {count} completions")
        for label, values in (("prompt", prompts), ("completion", completions)):
            for index, value in enumerate(values):
                if not isinstance(value, (str, list, tuple)):
                    raise TypeError(
                        f"{label} {index}: expected a string or a list of messages, "
                        f"got {type(value).__name__}"
                    )
        used = [*(columns if self.columns is None else self.columns), self.ground_truth_column]
        for name in dict.fromkeys(n for n in used if n is not None and n in columns):
            if name in TRL_KEYWORDS:
                continue
            value = columns[name]
            if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__"):
                raise TypeError(
                    f"dataset column {name!r}: expected one value per completion (a list), "
                    f"got {type(value).__name__}"
                )
            if len(value) != count:
                raise ValueError(
                    f"dataset column {name!r}: {len(value)} values for {count} completions"
                )

    def _rewards(
        self, batch: _Batch, results: list[ItemResult], hooks: dict[str, Any]
    ) -> list[float | None]:
        outcomes = batch.outcomes(results)
        self._log_causes(
            {i: c for i, c in enumerate(outcomes) if isinstance(c, str)}, len(outcomes)
        )
        rewards = [o.score if isinstance(o, ItemResult) else None for o in outcomes]
        codes: dict[str, int] = {}
        for o in outcomes:
            if isinstance(o, ItemResult) and o.error is not None:
                codes[o.error.code] = codes.get(o.error.code, 0) + 1
        if codes:  # the reward function failed on some items: data-dependent, so a warning
            logger.warning(
                "%s: %d of %d items failed on the evaluator, their rewards are None: %s",
                self.__name__,
                sum(codes.values()),
                len(outcomes),
                ", ".join(f"{code} x{n}" for code, n in sorted(codes.items())),
            )
        log_metric: Callable[[str, float], None] | None = hooks.get("log_metric")
        log_extra: Callable[[str, list[Any]], None] | None = hooks.get("log_extra")
        if log_metric is not None:
            metrics: dict[str, list[float]] = {}
            for r in outcomes:
                if isinstance(r, ItemResult) and r.result is not None and r.ok:
                    for key, metric in r.result.metrics.items():
                        if metric.is_score_valid:
                            metrics.setdefault(key, []).append(metric.score)
            for key, values in metrics.items():
                log_metric(f"{self.__name__}/{key}", sum(values) / len(values))
            log_metric(f"{self.__name__}/failed", rewards.count(None) / max(1, len(rewards)))
        if log_extra is not None:
            log_extra(f"{self.__name__}/reason", [_reason(o) for o in outcomes])
        return rewards

    def _failed(self, error: Exception, count: int, hooks: dict[str, Any]) -> list[float | None]:
        """The whole call failed: raise with on_error="raise", else ``None`` for every item
        and an ERROR log with the cause (a training run must not fail silently)."""
        if self.on_error == "raise":
            raise error
        hint = (
            " (this will not heal by itself: check the URL, the function name and the key; "
            "on_error='raise' stops training on it)"
            if isinstance(error, (KeyError, RequestRejected)) and not isinstance(error, Overloaded)
            else ""
        )
        cause = f"{type(error).__name__}: {error}{hint}"
        return self._rewards(_Batch.failed(count, cause), [], hooks)

    def _log_causes(self, causes: dict[int, str], count: int) -> None:
        by_cause: dict[str, int] = {}
        for cause in causes.values():
            by_cause[cause] = by_cause.get(cause, 0) + 1
        for cause, affected in by_cause.items():  # once per distinct cause per call
            logger.error("%s: %d of %d rewards are None: %s", self.__name__, affected, count, cause)


class _Batch:
    """One TRL call: the items, and why the ones that were not sent were left out."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.encoded: list[bytes] = []
        self.skipped: dict[int, str] = {}

    @classmethod
    def failed(cls, count: int, cause: str) -> _Batch:
        batch = cls([{}] * count)
        batch.skipped = dict.fromkeys(range(count), cause)
        return batch

    def find_unencodable(self, ground_truth_column: str | None) -> None:
        """Encode each item once, for sending (:attr:`encoded`); leave out each one that
        cannot be, naming the field at fault: the other items are still scored, and no field
        is silently dropped from one."""
        for index, item in enumerate(self.items):
            try:
                self.encoded.append(_core.dumps(item))
                continue
            except (TypeError, ValueError) as error:
                fallback = f"it is not JSON-serializable ({error})"
            fields: list[tuple[str, Any]] = [
                (
                    f"dataset column {ground_truth_column!r} (the ground truth)",
                    item.get("ground_truth"),
                ),
                *((f"dataset column {k!r}", v) for k, v in item.get("kwargs", {}).items()),
                ("the prompt or completion", item["messages"]),
            ]
            self.skipped[index] = fallback
            for label, value in fields:
                try:
                    _core.dumps(value)
                except (TypeError, ValueError) as error:
                    self.skipped[index] = f"{label} is not JSON-serializable ({error})"
                    break

    def outcomes(self, results: list[ItemResult]) -> list[ItemResult | str]:
        """Per completion, its result or the reason it was not sent."""
        sent = iter(results)
        return [
            self.skipped[i] if i in self.skipped else next(sent) for i in range(len(self.items))
        ]


class AsyncTRLReward(_RemoteReward):
    """An ``async`` TRL reward function; TRL awaits it next to its other async rewards."""

    async def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        # Caller bugs raise; with on_error="none" any other failure is None for the items it
        # hit, logged.
        self._check_call(prompts, completions, kwargs)
        try:
            batch = self._prepare(prompts, completions, kwargs)
            results = (
                await self._client()._batch_encoded(batch.encoded, self.function)
                if batch.encoded
                else []
            )
        except Exception as error:
            return self._failed(error, _length(completions), kwargs)
        return self._rewards(batch, results, kwargs)

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


class TRLReward(_RemoteReward):
    """A blocking TRL reward (:class:`AsyncTRLReward` is its async twin)."""

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        self._check_call(prompts, completions, kwargs)
        try:
            batch = self._prepare(prompts, completions, kwargs)
            results = (
                self._client()._batch_encoded(batch.encoded, self.function) if batch.encoded else []
            )
        except Exception as error:
            return self._failed(error, _length(completions), kwargs)
        return self._rewards(batch, results, kwargs)

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
    url_or_client: str | Sequence[str] | EvaluatorClient | AsyncEvaluatorClient,
    *,
    function: str,
    ground_truth_column: str | None = "solution",
    columns: Sequence[str] | None = None,
    on_error: OnError = "none",
    name: str | None = None,
    auth: httpx.Auth | str | Literal[False] | None = None,
) -> AsyncTRLReward:
    """An async, picklable TRL reward that scores each generation batch in one request.

    >>> reward = trl_reward("http://127.0.0.1:8000", function="exact_match",
    ...                     auth=ApiKey(os.environ["RK_API_KEY"]))  # doctest: +SKIP
    >>> GRPOTrainer(model=..., reward_funcs=[reward], ...)  # doctest: +SKIP
    """
    return AsyncTRLReward(
        url_or_client,
        function=function,
        ground_truth_column=ground_truth_column,
        columns=columns,
        on_error=on_error,
        name=name,
        auth=auth,
    )


def trl_reward_sync(
    url_or_client: str | Sequence[str] | EvaluatorClient | AsyncEvaluatorClient,
    *,
    function: str,
    ground_truth_column: str | None = "solution",
    columns: Sequence[str] | None = None,
    on_error: OnError = "none",
    name: str | None = None,
    auth: httpx.Auth | str | Literal[False] | None = None,
) -> TRLReward:
    """Like :func:`trl_reward`, with a blocking ``__call__``."""
    return TRLReward(
        url_or_client,
        function=function,
        ground_truth_column=ground_truth_column,
        columns=columns,
        on_error=on_error,
        name=name,
        auth=auth,
    )


def _length(completions: Any) -> int:
    # Only for the failure path, which must not raise itself.
    try:
        return len(completions)
    except TypeError:
        return 0


def conversation(prompt: Any, completion: Any) -> list[Any]:
    """The chat TRL generated: the prompt (a string is one user message) and the completion
    (a string is one assistant message), as message dicts.

    >>> [m["role"] for m in conversation("2+2?", "4")]
    ['user', 'assistant']
    """
    return _as_messages(prompt, "user") + _as_messages(completion, "assistant")


def _as_messages(value: Any, role: str) -> list[Any]:
    """Standard format is a string; conversational format is already a message list."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return list(value)


def _reason(result: ItemResult | str) -> str:
    if isinstance(result, str):
        return f"not scored: {result}"
    if result.error is not None:
        return f"error {result.error.code}: {result.error.message}"
    if result.result is not None and not result.result.is_score_valid:
        return f"invalid score: {result.result.reason or ''}"
    return (result.result.reason or "") if result.result is not None else ""
