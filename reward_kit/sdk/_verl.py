"""What reward-kit's two verl ``compute_score`` adapters share: the conversation a sample is,
which keyword arguments may cross the wire, and the dict verl gets back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import EvaluationError, EvaluatorUnavailable, Overloaded, RewardKitError
from .._metric_keys import MetricKeys
from .._models import EvaluateResult
from ._core import dumps, make_item
from ._remote_adapter import RemoteAdapter

__all__ = [
    "FALLBACK_ERRORS",
    "NON_DATA_KWARGS",
    "RemoteVerl",
    "data_kwargs",
    "messages_of",
    "sendable",
    "unlike_verls_timeout",
]

# verl's reward-loop managers (verl 0.7 and later: naive, dapo, gdpo, rate_limited, remote) add
# these two to every call when a reward model is enabled, for GenRM functions that query verl's
# own reward-model router. They are verl's runtime objects, not sample data: a tokenizer cannot
# be sent, and a router address inside the training cluster means nothing to an evaluator.
NON_DATA_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})

# The failures ``on_error`` may replace by a number: failed evaluations, outages, overload, and
# timeouts (the server's, and verl's own: its ``compute_score_timeout`` raises TimeoutError from
# a SIGALRM handler, which the client re-raises untouched). A misconfiguration, such as a wrong
# key or function name, always raises.
FALLBACK_ERRORS = (EvaluationError, EvaluatorUnavailable, Overloaded, TimeoutError)


def unlike_verls_timeout(error: Exception) -> Exception:
    """``error``, or, when it is a reward-kit error that is also a TimeoutError (the server's
    reward timeout), an EvaluationError that is not: verl's reward managers catch every
    TimeoutError as their own ``compute_score_timeout`` and score the sample 0.0, which would
    silently train on an evaluator failure. Only verl's own SIGALRM TimeoutError stays one.

    >>> from reward_kit._errors import EvaluationTimeout
    >>> type(unlike_verls_timeout(EvaluationTimeout("ran past 1s"))).__name__
    'EvaluationError'
    """
    if not (isinstance(error, TimeoutError) and isinstance(error, RewardKitError)):
        return error
    changed = EvaluationError(
        f"the evaluator timed out scoring the sample ({error.message}); raised as an "
        "EvaluationError so that verl does not take it for its compute_score_timeout",
        code=error.code,
    )
    changed.__cause__ = error
    return changed


def messages_of(solution_str: str, extra_info: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The conversation scored for one verl sample: the response, after ``extra_info["prompt"]``
    when verl's dataset put the prompt text there.

    >>> messages_of("4", {"prompt": "2+2?"})
    [{'role': 'user', 'content': '2+2?'}, {'role': 'assistant', 'content': '4'}]
    """
    messages = [{"role": "assistant", "content": solution_str}]
    if extra_info and isinstance(extra_info.get("prompt"), str):
        messages.insert(0, {"role": "user", "content": extra_info["prompt"]})
    return messages


def data_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments to send: verl's :data:`NON_DATA_KWARGS` left out, OmegaConf
    containers (``reward_kwargs`` from a Hydra config) as plain dicts and lists, and a
    TypeError naming any other argument that cannot be sent as JSON.

    >>> data_kwargs({"reward_router_address": "10.0.0.1:30000", "weights": (1, 2)})
    {'weights': [1, 2]}
    >>> data_kwargs({"model": object()})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: compute_score got model=<object>, which cannot be sent to the evaluator ...
    """
    return {
        name: sendable(name, value) for name, value in kwargs.items() if name not in NON_DATA_KWARGS
    }


def sendable(name: str, value: Any) -> Any:
    """``value`` as plain data, or a TypeError naming ``name`` when it cannot be sent."""
    value = _plain_containers(value)
    try:
        dumps(make_item([], kwargs={name: value}))
    except TypeError as error:
        raise TypeError(
            f"compute_score got {name}=<{type(value).__name__}>, which cannot be sent to the "
            f"evaluator as JSON ({error}). Keyword arguments must be data (strings, numbers, "
            f"lists, dicts); verl's own {', '.join(sorted(NON_DATA_KWARGS))} are left out for you"
        ) from None
    return value


def _plain_containers(value: Any) -> Any:
    # OmegaConf's DictConfig / ListConfig are a Mapping / Sequence, not a dict / list.
    if isinstance(value, (str, bytes, bytearray)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {key: _plain_containers(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return [_plain_containers(item) for item in value]
    return value


class RemoteVerl(RemoteAdapter):
    """A verl reward function on a remote evaluator; settings, pickling and metric keys as
    :class:`~reward_kit.sdk._remote_adapter.RemoteAdapter`."""

    trainer = "verl"

    def _row(self, keys: MetricKeys, result: EvaluateResult | None) -> dict[str, Any]:
        """One sample's dict for verl: the score and the metric keys; ``result`` None is a
        failed sample, scored ``on_error``."""
        score = float(self.on_error) if result is None else result.score
        metrics = None if result is None else {k: m.score for k, m in result.metrics.items()}
        row: dict[str, Any] = {"score": score, **keys.row(metrics)}
        row["score"] = score  # whatever the keys: verl trains on this one
        return row
