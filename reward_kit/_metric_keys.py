"""One metric key set per reward function, whatever each sample returned.

Trainers lay metrics out as columns: OpenRLHF merges each sample's ``extra_logs`` key by key
(``Size of info[k] (1) does not match batch_size (2)`` when they differ), and verl lists each
``reward_extra_info`` key per batch. So every sample a function scores must carry the same keys,
shared by the server's ``/openrlhf/<fn>`` route and the SDK's OpenRLHF and verl adapters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

from ._vocabulary import FAILED_METRIC

__all__ = ["MISSING_METRIC", "RESERVED_METRICS", "MetricKeys", "check_metric_names", "columns"]

logger = logging.getLogger("reward_kit.metrics")

# Trainers need a number for every key of every sample (JSON has no NaN, and None breaks
# their tensors), so a metric a sample did not return is sent as this; its logged mean counts it.
MISSING_METRIC = 0.0

# Names a metric cannot have: trainers' own keys next to the metrics (verl's ``score``,
# OpenRLHF's ``reward``/``score``), which a metric of that name would overwrite, and the flag.
RESERVED_METRICS = {
    "score": "the score verl and OpenRLHF train on",
    "reward": "the reward OpenRLHF trains on",
    FAILED_METRIC: "reward-kit's own flag for a fallback reward",
}


def check_metric_names(metrics: Sequence[str], *, field: str = "metrics") -> tuple[str, ...]:
    """``metrics`` as a tuple, or a TypeError / ValueError naming what is wrong with them.

    >>> check_metric_names(["exact", "score"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: metrics: 'score' would overwrite the score verl and OpenRLHF train on; ...
    """
    if isinstance(metrics, str) or not all(isinstance(m, str) and m for m in metrics):
        raise TypeError(f"{field} must be a list of metric names, got {metrics!r}")
    names = tuple(metrics)
    twice = sorted({m for m in names if names.count(m) > 1})
    if twice:
        raise ValueError(f"{field}: {', '.join(map(repr, twice))} listed more than once")
    for name in names:
        if name in RESERVED_METRICS:
            raise ValueError(
                f"{field}: {name!r} would overwrite {RESERVED_METRICS[name]}; "
                "name the metric differently"
            )
    return names


class MetricKeys:
    """The metric keys of one reward function, the same for every sample.

    One rule, so that every process (replicas, restarts, each Ray worker) sends the same keys
    without talking to the others:

    * metric names known before any answer (``declared``: ``@reward_function(metrics=[...])``,
      or an adapter's ``metrics=``) are always the keys;
    * with ``flag_failures`` (a fallback reward is configured) and nothing declared, the only
      key is ``reward_kit_failed``: a sample can fail before any result showed the metric
      names, and its row must match later ones, so no metric is sent (logged once, with
      ``hint`` on how to declare them);
    * otherwise (failures fail the request, so no row is ever made without a result) the metric
      names of the first valid result, fixed from then on; a name that appears only later is
      left out (logged once). Other processes learn the same names only if the function
      returns the same names every time.

    A key a sample lacks is sent as :data:`MISSING_METRIC`. With ``flag_failures`` every
    sample also has ``reward_kit_failed``: 1.0 for a failed one, 0.0 otherwise.

    >>> logs = MetricKeys(function="f", declared=["a", "b"], flag_failures=True)
    >>> logs.row({"a": 1.0, "c": 3.0})
    {'a': 1.0, 'b': 0.0, 'reward_kit_failed': 0.0}
    >>> logs.row(None)
    {'a': 0.0, 'b': 0.0, 'reward_kit_failed': 1.0}
    >>> MetricKeys(function="f", declared=None, flag_failures=True).row({"a": 1.0})
    {'reward_kit_failed': 0.0}
    """

    def __init__(
        self,
        *,
        function: str,
        declared: Sequence[str] | None,
        flag_failures: bool,
        trainer: str = "openrlhf",
        hint: str = "declare them with @reward_function(metrics=[...])",
    ) -> None:
        self.function = function
        self.trainer = trainer
        self.hint = hint
        self.declared = declared is not None
        self.flag_failures = flag_failures
        # Inferring is only safe when no row is ever made without a result (no fallback).
        self.inferred = declared is None and not flag_failures
        self._keys: tuple[str, ...] | None = (
            tuple(declared) if declared is not None else None if self.inferred else ()
        )
        self._warned: set[str] = set()
        # The SDK's reward_func is called from many OpenRLHF threads at once.
        self._lock = threading.Lock()

    @property
    def keys(self) -> tuple[str, ...] | None:
        """The metric keys, or None while a function that declares none has no valid result."""
        return self._keys

    def row(self, metrics: Mapping[str, float] | None) -> dict[str, float]:
        """One sample's metrics: ``metrics`` of a valid result, or None for a failure."""
        keys = self._keys
        if keys is None and metrics is not None:
            with self._lock:
                if self._keys is None:
                    # A function's own "score" metric would overwrite the trainer's score.
                    self._keys = tuple(sorted(k for k in metrics if k not in RESERVED_METRICS))
                keys = self._keys
        out = dict.fromkeys(keys or (), MISSING_METRIC)
        if metrics is not None:
            for key, value in metrics.items():
                if key in out:
                    out[key] = float(value)
                elif key not in self._warned:
                    self._left_out(key)
        if self.flag_failures:
            out[FAILED_METRIC] = 0.0 if metrics is not None else 1.0
        return out

    def _left_out(self, key: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
            if not self.declared and not self.inferred:
                if len(self._warned) > 1:
                    return  # once per function: the advice is the same for every name
                logger.warning(
                    "%s: %s declares no metrics and a fallback reward is set, so its samples "
                    "carry only %r (a failed sample has no metrics, and every sample must "
                    "carry the same keys); to log its metrics (here %r), %s",
                    self.trainer,
                    self.function,
                    FAILED_METRIC,
                    key,
                    self.hint,
                )
                return
        where = (
            "declared metrics"
            if self.declared
            else f"metrics of its first valid result ({self.hint})"
        )
        logger.warning(
            "%s: %s returned metric %r, which is not in its metric keys %s (the %s); "
            "it is not sent to the trainer",
            self.trainer,
            self.function,
            key,
            list(self._keys or ()),
            where,
        )


def columns(rows: Sequence[Mapping[str, float]]) -> dict[str, list[float]]:
    """Per-sample rows (all with the same keys) as columns, ``{key: [value per sample]}``."""
    return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}
