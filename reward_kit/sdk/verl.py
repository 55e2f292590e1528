"""verl ``custom_reward_function`` backed by a remote evaluator.

verl's per-sample reward managers call ``compute_score(data_source, solution_str,
ground_truth, extra_info=None)``; its ``batch`` manager calls ``compute_score(data_sources=...,
solution_strs=..., ground_truths=..., extra_infos=...)`` once per batch. Both accept a dict with
``score``, whose other keys go to ``reward_extra_info`` (logged, and listed per key, so every
sample carries the same keys). Point ``custom_reward_function.path`` at a file that does::

    from reward_kit.sdk.verl import batch_compute_score_fn, compute_score_fn
    compute_score = compute_score_fn("http://127.0.0.1:8000", function="exact_match")
    compute_score_batch = batch_compute_score_fn("http://127.0.0.1:8000", function="exact_match")

A failed evaluation raises its typed error: verl has no "no reward" value, and a made-up score
would silently train on an error. The server's reward timeout is raised as an EvaluationError,
never a TimeoutError, which verl's managers would score 0.0. ``on_error=<float>`` chooses a
fallback instead; every sample then carries ``reward_kit_failed`` (1.0 for the fallback ones),
and metric keys only from ``metrics=``. verl's own timeout
(``compute_score_timeout``, a SIGALRM handler) reaches verl as the TimeoutError it raised, at
once and never retried, or becomes the fallback when one is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import httpx

from .._errors import EvaluationError
from .._metric_keys import MetricKeys
from .._models import EvaluateResult
from ._client import EvaluatorClient
from ._core import ClientConfig
from ._results import ItemError, ItemResult
from ._verl import (
    FALLBACK_ERRORS,
    NON_DATA_KWARGS,
    RemoteVerl,
    data_kwargs,
    messages_of,
    sendable,
    unlike_verls_timeout,
)

__all__ = [
    "NON_DATA_KWARGS",
    "RemoteBatchComputeScore",
    "RemoteComputeScore",
    "batch_compute_score_fn",
    "compute_score_fn",
]


class RemoteComputeScore(RemoteVerl):
    """verl's per-sample ``compute_score`` (reward managers ``naive`` and ``dapo``, and those of
    verl 0.7+'s reward loop), one ``/evaluate`` request per sample. Built from an
    :class:`EvaluatorClient` (or a ``ClientConfig``), it takes the client's settings, and
    passing ``auth``, ``timeout`` or ``max_retries`` as well is a TypeError; a custom
    ``transport`` is not carried to other processes (they use httpx's default one).

    ``data_source``, ``extra_info`` and any ``reward_kwargs`` reach the reward function as
    keyword arguments; verl's :data:`NON_DATA_KWARGS` are left out.
    """

    def __call__(
        self,
        data_source: str,
        solution_str: str,
        ground_truth: Any,
        extra_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        sent = data_kwargs({**kwargs, "data_source": data_source, "extra_info": extra_info or {}})
        client = self._get_client()
        try:
            keys = self._get_keys(client)
            result = client.evaluate(
                messages_of(solution_str, extra_info), ground_truth, function=self.function, **sent
            )
            if not result.is_score_valid:
                raise EvaluationError(f"{self.function} marked its score invalid: {result.reason}")
        except FALLBACK_ERRORS as error:
            if self.on_error == "raise":
                changed = unlike_verls_timeout(error)
                if changed is not error:
                    raise changed from error
                raise
            return self._row(self._keys_for_failure(), None)
        return self._row(keys, result)


class RemoteBatchComputeScore(RemoteVerl):
    """verl's batch ``compute_score`` (``reward_manager=batch``): the whole batch in one
    ``/batch_evaluate`` request, one dict per sample in input order. Settings and pickling as
    :class:`RemoteComputeScore`.

    One sample's failure raises its typed error naming the sample, or, with ``on_error``, scores
    that sample alone the fallback; a request that fails as a whole (an outage) does the same
    for every sample.
    """

    def __call__(
        self,
        data_sources: Sequence[str],
        solution_strs: Sequence[str],
        ground_truths: Sequence[Any],
        extra_infos: Sequence[dict[str, Any] | None] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        size = len(solution_strs)
        extras = list(extra_infos) if extra_infos is not None else [None] * size
        columns = {
            "data_sources": data_sources,
            "ground_truths": ground_truths,
            "extra_infos": extras,
        }
        for name, column in columns.items():
            if len(column) != size:
                raise ValueError(f"{name} has {len(column)} entries for {size} solution_strs")
        shared = data_kwargs(kwargs)
        items = [
            {
                "messages": messages_of(solution, extra),
                "ground_truth": truth,
                "kwargs": {
                    **shared,
                    "data_source": source,
                    "extra_info": sendable(f"extra_infos[{index}]", extra or {}),
                },
            }
            for index, (source, solution, truth, extra) in enumerate(
                zip(data_sources, solution_strs, ground_truths, extras, strict=True)
            )
        ]
        client = self._get_client()
        try:
            keys = self._get_keys(client)
            results = client.batch_evaluate(items, function=self.function)
        except FALLBACK_ERRORS as error:
            if self.on_error == "raise":
                changed = unlike_verls_timeout(error)
                if changed is not error:
                    raise changed from error
                raise
            keys = self._keys_for_failure()
            return [self._row(keys, None) for _ in items]
        return self._rows(keys, results)

    def _rows(self, keys: MetricKeys, items: list[ItemResult]) -> list[dict[str, Any]]:
        results = [self._result(item, len(items)) for item in items]
        # The first valid result fixes the keys of a function that declares none: it is read
        # before any failed sample's row is made, so the batch's rows all carry the same keys.
        first = next((result for result in results if result is not None), None)
        if first is not None:
            self._row(keys, first)
        return [self._row(keys, result) for result in results]

    def _result(self, item: ItemResult, size: int) -> EvaluateResult | None:
        """The item's valid result, or None for a failure the fallback covers; a failure it
        does not cover (any, when ``on_error`` is "raise") raises, naming the sample."""
        if item.ok and item.result is not None and item.result.is_score_valid:
            return item.result
        where = f"sample {item.index} of {size}"
        if item.error is not None:
            error = ItemError(item.error.code, f"{where}: {item.error.message}").exception()
        else:
            reason = item.result.reason if item.result is not None else None
            error = EvaluationError(f"{where}: {self.function} marked its score invalid: {reason}")
        if self.on_error == "raise" or not isinstance(error, FALLBACK_ERRORS):
            raise unlike_verls_timeout(error)
        return None


def compute_score_fn(
    url: str | Sequence[str] | EvaluatorClient | ClientConfig,
    *,
    function: str,
    auth: httpx.Auth | str | Literal[False] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    on_error: str | float = "raise",
    metrics: Sequence[str] | None = None,
) -> RemoteComputeScore:
    """A verl ``compute_score`` that scores each sample on the evaluator at ``url``.
    ``metrics`` fixes the metric keys of every sample; without it, with ``on_error`` set,
    samples carry only ``reward_kit_failed``, and with ``on_error="raise"`` the names the
    function declares (read from the evaluator once per process), else those of its first
    valid result.

    >>> compute_score = compute_score_fn("http://127.0.0.1:8000", function="exact_match")
    >>> compute_score("gsm8k", "<answer>4</answer>", "4")["score"]  # doctest: +SKIP
    1.0
    """
    return RemoteComputeScore(
        url,
        function=function,
        auth=auth,
        timeout=timeout,
        max_retries=max_retries,
        on_error=on_error,
        metrics=metrics,
    )


def batch_compute_score_fn(
    url: str | Sequence[str] | EvaluatorClient | ClientConfig,
    *,
    function: str,
    auth: httpx.Auth | str | Literal[False] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    on_error: str | float = "raise",
    metrics: Sequence[str] | None = None,
) -> RemoteBatchComputeScore:
    """A verl batch ``compute_score`` (``reward_manager=batch``): one request per batch.

    >>> compute_score = batch_compute_score_fn("http://127.0.0.1:8000", function="exact_match")
    >>> [r["score"] for r in compute_score(  # doctest: +SKIP
    ...     data_sources=["gsm8k", "gsm8k"], solution_strs=["4", "5"],
    ...     ground_truths=["4", "4"], extra_infos=[{}, {}])]
    [1.0, 0.0]
    """
    return RemoteBatchComputeScore(
        url,
        function=function,
        auth=auth,
        timeout=timeout,
        max_retries=max_retries,
        on_error=on_error,
        metrics=metrics,
    )
