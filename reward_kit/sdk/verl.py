"""verl ``custom_reward_function`` backed by a remote evaluator.

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info=None)`` once per
sample and accepts a dict with ``score``; the other keys go to ``reward_extra_info`` (logged and
averaged per batch). Point ``custom_reward_function.path`` at a file that does::

    from reward_kit.sdk.verl import compute_score_fn
    compute_score = compute_score_fn("http://127.0.0.1:8000", function="exact_match")
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import httpx

from .._errors import EvaluationError, EvaluatorUnavailable, Overloaded
from ._client import EvaluatorClient, build_config
from ._core import ClientConfig

__all__ = ["RemoteComputeScore", "compute_score_fn"]


class RemoteComputeScore:
    """A picklable ``compute_score`` (verl ships reward functions to Ray workers); each process
    opens its own connection pool on first use. Built from an :class:`EvaluatorClient` (or a
    ``ClientConfig``), it takes the client's settings, and passing ``auth``, ``timeout`` or
    ``max_retries`` as well is a TypeError; a custom ``transport`` is not carried to other
    processes (they use httpx's default one).

    A failed evaluation raises its typed error: verl has no "no reward" value, and a made-up
    score would silently train on an error. Pass ``on_error=<float>`` to choose a fallback
    yourself; the dict then carries ``reward_kit_failed`` = 1.0 for those samples.
    """

    def __init__(
        self,
        url: str | EvaluatorClient | ClientConfig,
        *,
        function: str,
        auth: httpx.Auth | str | Literal[False] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        on_error: str | float = "raise",
    ) -> None:
        if on_error != "raise" and not isinstance(on_error, (int, float)):
            raise ValueError(f"on_error must be 'raise' or a number, got {on_error!r}")
        if isinstance(url, EvaluatorClient):
            url = url.config
        if isinstance(url, ClientConfig):
            given = {"auth": auth, "timeout": timeout, "max_retries": max_retries}
            ignored = [name for name, value in given.items() if value is not None]
            if ignored:
                # They would be silently dropped: the client's own settings are used.
                raise TypeError(
                    f"{', '.join(ignored)}: not accepted with an EvaluatorClient or ClientConfig, "
                    "which carries its own; set them on the client, or pass a URL"
                )
            self.config = url
        else:
            self.config = build_config(url, auth=auth, timeout=timeout, max_retries=max_retries)
        self.function = function
        self.on_error = on_error
        self.__name__ = function
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # The live client stays behind; ClientConfig drops its transport itself.
        return {k: v for k, v in self.__dict__.items() if k not in ("_client", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _get_client(self) -> EvaluatorClient:
        with self._lock:
            if "_client" not in self.__dict__:
                self._client = EvaluatorClient.from_config(self.config)
        return self._client

    def close(self) -> None:
        client = self.__dict__.pop("_client", None)
        if client is not None:
            client.close()

    def __call__(
        self,
        data_source: str,
        solution_str: str,
        ground_truth: Any,
        extra_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = [{"role": "assistant", "content": solution_str}]
        if extra_info and isinstance(extra_info.get("prompt"), str):
            messages.insert(0, {"role": "user", "content": extra_info["prompt"]})
        try:
            result = self._get_client().evaluate(
                messages,
                ground_truth,
                function=self.function,
                data_source=data_source,
                extra_info=extra_info or {},
                **kwargs,
            )
            if not result.is_score_valid:
                raise EvaluationError(f"{self.function} marked its score invalid: {result.reason}")
        except (EvaluationError, EvaluatorUnavailable, Overloaded):
            # Only evaluation failures and outages: a wrong key or function name always raises.
            if self.on_error == "raise":
                raise
            return {"score": float(self.on_error), "reward_kit_failed": 1.0}
        scores = {k: m.score for k, m in result.metrics.items() if k not in ("score",)}
        out: dict[str, Any] = {"score": result.score, **scores}
        if self.on_error != "raise":  # keep keys identical across samples (verl lists them)
            out["reward_kit_failed"] = 0.0
        return out


def compute_score_fn(
    url: str | EvaluatorClient | ClientConfig,
    *,
    function: str,
    auth: httpx.Auth | str | Literal[False] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    on_error: str | float = "raise",
) -> RemoteComputeScore:
    """A verl ``compute_score`` that scores each sample on the evaluator at ``url``.

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
    )
