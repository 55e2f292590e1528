"""OpenRLHF ``reward_func`` backed by a remote evaluator.

With ``--reward.remote_url my_reward.py`` (``--remote_rm_url`` up to OpenRLHF 0.10.1) OpenRLHF
imports the file and calls its ``reward_func(queries, prompts, labels)``: from threads, one
sample per call, in 0.9.1 and later; in Ray tasks (the function pickled), a micro-batch per
call, in 0.8.x. It expects ``{"rewards": tensor, "scores": tensor, "extra_logs": {k: tensor}}``.
The file can be::

    from reward_kit.sdk.openrlhf import reward_func_fn

    _reward = reward_func_fn("http://127.0.0.1:8000", function="exact_match")

    def reward_func(queries, prompts, labels, **kwargs):
        return _reward(queries, prompts, labels)

(a plain function: 0.8.x hands it to ``ray.remote``, which takes no other callables).
torch is imported on the first call, never by importing this module.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from .._errors import EvaluationError, EvaluatorUnavailable, Overloaded
from .._metric_keys import MetricKeys, columns
from .._openrlhf import messages_of, prompt_found
from ._client import EvaluatorClient
from ._core import ClientConfig, make_item
from ._remote_adapter import RemoteAdapter
from ._results import ItemError, ItemResult

__all__ = ["RemoteRewardFunc", "reward_func_fn"]

logger = logging.getLogger("reward_kit.openrlhf")


class RemoteRewardFunc(RemoteAdapter):
    """OpenRLHF's ``reward_func``: the samples of one call go to the evaluator as one batch.

    A sample the evaluator could not score (a failed item, an invalid score, or the evaluator
    unreachable or overloaded after the client's retries) raises its typed error: OpenRLHF 0.9.1
    and later then keep that sample's reward as ``None``. ``on_error=<number>`` chooses a
    fallback instead: such samples get that reward and score, ``reward_kit_failed`` = 1.0 in
    ``extra_logs`` (0.0 for the others), and a warning in this process's log. A wrong key,
    function name or request always raises.

    ``extra_logs`` has the same keys for every sample, in every process: ``metrics`` if given;
    with ``on_error`` set and no ``metrics``, only ``reward_kit_failed``; else the metrics the
    function declares (read once per process from the evaluator's ``GET /functions``), else
    those of its first valid result. A key a sample lacks is 0.0. A sample whose prompt is not
    in its query is scored whole (logged once). Settings and pickling as
    :class:`~reward_kit.sdk.verl.RemoteComputeScore`; each thread opens its own connection.
    """

    trainer = "openrlhf"

    def __call__(
        self, queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kwargs: Any
    ) -> dict[str, Any]:
        """Score ``queries`` (prompt + response) against ``labels``; OpenRLHF's extra keyword
        arguments, if any, are not sent."""
        if not len(queries) == len(prompts) == len(labels):
            raise ValueError(
                f"queries, prompts and labels must have the same length; got {len(queries)}, "
                f"{len(prompts)} and {len(labels)}"
            )
        if not self.__dict__.get("_unfound_warned") and not all(
            prompt_found(q, p) for q, p in zip(queries, prompts, strict=True)
        ):
            self._unfound_warned = True
            logger.warning(
                "openrlhf: %s: a sample's prompt is not in its query, so the whole query was "
                "scored as the response (logged once)",
                self.function,
            )
        items = [
            make_item(messages_of(q, p), label)
            for q, p, label in zip(queries, prompts, labels, strict=True)
        ]
        results: list[ItemResult] | None
        client = self._get_client()
        try:
            keys = self._get_keys(client)
            results = client.batch_evaluate(items, function=self.function)
        except (EvaluationError, EvaluatorUnavailable, Overloaded) as error:
            if self.on_error == "raise":
                raise
            logger.warning(
                "openrlhf: %s: %d sample(s) unscored (%s); reward %g (on_error)",
                self.function,
                len(items),
                error,
                self.on_error,
            )
            keys = self._keys_for_failure()
            results = None
        return self._answer(results, len(items), keys)

    def _answer(
        self, results: list[ItemResult] | None, count: int, keys: MetricKeys
    ) -> dict[str, Any]:
        import torch  # OpenRLHF always has it; this module must import without it

        failed = (
            list(range(count))
            if results is None
            else [i for i, r in enumerate(results) if r.score is None]
        )
        if failed and self.on_error == "raise":
            assert results is not None
            raise _failure(self.function, results, failed)
        fallback = 0.0 if self.on_error == "raise" else float(self.on_error)
        rewards = [fallback] * count
        rows: list[Mapping[str, float]] = [{}] * count
        skip = set(failed)
        for i, item in enumerate(results or ()):
            if i not in skip and item.result is not None:
                rewards[i] = item.result.score
                rows[i] = keys.row({k: m.score for k, m in item.result.metrics.items()})
        for i in failed:
            if results is not None:
                logger.warning(
                    "openrlhf: %s sample %d of %d failed: %s; reward %g (on_error)",
                    self.function,
                    i,
                    count,
                    _reason(self.function, results[i]),
                    fallback,
                )
            rows[i] = keys.row(None)
        tensor = torch.tensor(rewards, dtype=torch.float32)
        return {
            "rewards": tensor,
            "scores": tensor.clone(),
            "extra_logs": {
                key: torch.tensor(column, dtype=torch.float32)
                for key, column in columns(rows).items()
            },
        }


def _reason(function: str, item: ItemResult) -> str:
    if item.error is not None:
        return f"{item.status}: {item.error.message}"
    reason = item.result.reason if item.result is not None else None
    return f"{function} marked its score invalid: {reason or 'no reason given'}"


def _failure(function: str, results: list[ItemResult], failed: list[int]) -> Exception:
    first = results[failed[0]]
    message = (
        f"{len(failed)} of {len(results)} sample(s) have no reward (indices {failed[:20]}); "
        f"first: {_reason(function, first)}"
    )
    if first.error is not None:
        return ItemError(first.error.code, message).exception()
    return EvaluationError(message)


def reward_func_fn(
    url: str | Sequence[str] | EvaluatorClient | ClientConfig,
    *,
    function: str,
    auth: httpx.Auth | str | Literal[False] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    on_error: str | float = "raise",
    metrics: Sequence[str] | None = None,
) -> RemoteRewardFunc:
    """An OpenRLHF ``reward_func`` that scores samples on the evaluator at ``url``.

    >>> reward = reward_func_fn("http://127.0.0.1:8000", function="exact_match")
    >>> reward(["Q: 2+2? A: 4"], ["Q: 2+2? A:"], ["4"])["rewards"]  # doctest: +SKIP
    tensor([1.])
    """
    return RemoteRewardFunc(
        url,
        function=function,
        auth=auth,
        timeout=timeout,
        max_retries=max_retries,
        on_error=on_error,
        metrics=metrics,
    )
