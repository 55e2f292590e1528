"""Scoring a run's samples: locally through the engine (killable workers, deadlines), or by a
served evaluator through the SDK's batched client.

A scorer takes many samples of one reward at once (one engine call or one ``/batch_evaluate``
request for many samples, never one per sample). For a ``mode="batch"`` function each call is
one prompt's group: the function gets all the samples of that prompt together.
Whatever happens, every sample gets an entry: ``{score, is_score_valid, reason, metrics,
status}``, with ``score: null`` and the failure's status when there is no score (never 0).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import ConfigurationError, RewardKitError
from .._function import RewardFunction
from .._loader import load_target
from .._vocabulary import DEFAULT_DEADLINE
from ..engine import Call, Engine, Item, Outcome
from ._config import RewardSpec, ScoringConfig

if TYPE_CHECKING:  # the SDK (httpx) is imported only by a run with a served evaluator
    from ..sdk import ItemResult

__all__ = ["LocalScorer", "RemoteScorer", "Reward", "Scorer", "load_rewards", "skipped_entry"]


@dataclass(frozen=True)
class Reward:
    """One reward function of a run, wherever it runs."""

    name: str
    mode: str  # "pointwise" | "batch"
    pass_threshold: float
    scorer: Scorer
    info: dict[str, Any]  # for the manifest: where it comes from, its source hash


class Scorer(Protocol):
    async def score(self, name: str, items: Sequence[Item]) -> list[dict[str, Any]]:
        """One entry per item, in order (a batch-mode function gets them as one group)."""


def skipped_entry(reason: str) -> dict[str, Any]:
    """A reward's entry on a sample that was not scored (its generation failed)."""
    return {
        "score": None,
        "is_score_valid": False,
        "reason": reason,
        "metrics": {},
        "status": "skipped",
    }


def _entry(status: str, result: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    if status == "ok" and result is not None:
        return {
            "score": result.get("score"),
            "is_score_valid": bool(result.get("is_score_valid", True)),
            "reason": result.get("reason"),
            "metrics": result.get("metrics") or {},
            "status": "ok",
        }
    return {
        "score": None,
        "is_score_valid": False,
        "reason": error or f"not scored ({status})",
        "metrics": {},
        "status": status,
    }


def _from_outcome(outcome: Outcome) -> dict[str, Any]:
    message = outcome.error.get("message") if outcome.error else None
    return _entry(outcome.status, outcome.result, message)


def _from_item_result(result: ItemResult) -> dict[str, Any]:
    if result.ok and result.result is not None:
        return _entry("ok", result.result.model_dump(mode="json"), None)
    return _entry(result.status, None, result.error.message if result.error else None)


class LocalScorer:
    """Rewards loaded in this process and run by one :class:`Engine`."""

    def __init__(self, functions: dict[str, RewardFunction[Any]], config: ScoringConfig) -> None:
        self.functions = functions
        self.config = config
        self.engine = Engine(
            functions=functions, workers=config.workers, memory_limit_mb=config.memory_limit_mb
        )

    def _timeout(self, fn: RewardFunction[Any]) -> float:
        return self.config.timeout or fn.timeout or DEFAULT_DEADLINE

    async def score(self, name: str, items: Sequence[Item]) -> list[dict[str, Any]]:
        fn = self.functions[name]
        timeout = self._timeout(fn)
        outcomes = await self.engine.run([Call(fn, item, timeout) for item in items])
        return [_from_outcome(o) for o in outcomes]


class RemoteScorer:
    """One served function, called with ``/batch_evaluate`` through the SDK (batched,
    retried, authenticated)."""

    def __init__(self, spec: RewardSpec) -> None:
        assert spec.url is not None
        assert spec.function is not None
        from ..sdk import ApiKey, AsyncEvaluatorClient

        self.spec = spec
        auth: Any = None  # the SDK's default credential (RK_API_KEY, auth.ini), as any client
        if spec.api_key_env is not None:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ConfigurationError(
                    f"config key 'rewards': the environment variable {spec.api_key_env} "
                    f"(api_key_env of {spec.label}) is not set"
                )
            auth = ApiKey(key)
        self.client = AsyncEvaluatorClient(spec.url, auth=auth)

    async def describe(self) -> dict[str, Any]:
        try:
            functions = await self.client.functions()
            health = await self.client.health()
        except RewardKitError as error:
            raise ConfigurationError(
                f"reward {self.spec.label}: the evaluator did not answer: {error.message}"
            ) from None
        for info in functions:
            if info.get("name") == self.spec.function:
                return {**info, "server_version": health.get("version")}
        names = ", ".join(sorted(str(f.get("name")) for f in functions))
        raise ConfigurationError(
            f"reward {self.spec.label}: the evaluator serves no function "
            f"{self.spec.function!r} (it serves: {names})"
        )

    async def score(self, name: str, items: Sequence[Item]) -> list[dict[str, Any]]:
        wire = [
            {"messages": i.messages, "ground_truth": i.ground_truth, "kwargs": i.kwargs}
            for i in items
        ]
        try:
            results = await self.client.batch_evaluate(wire, function=self.spec.function)
        except RewardKitError as error:
            # The whole request failed after the client's retries: each item says so.
            return [_entry("error", None, f"evaluator: {error.message}") for _ in items]
        return [_from_item_result(r) for r in results]

    async def close(self) -> None:
        await self.client.aclose()


async def load_rewards(
    specs: Sequence[RewardSpec], scoring: ScoringConfig, *, env: str | None = None
) -> tuple[list[Reward], LocalScorer | None, list[RemoteScorer]]:
    """Load every reward; names must be unique across local and remote ones (and differ
    from ``env``, the environment whose rollouts give a reward of that name)."""
    if not specs and env is None:
        raise ConfigurationError(
            "config key 'rewards': no reward functions (--reward TARGET or URL#FUNCTION)"
        )
    local: dict[str, tuple[RewardFunction[Any], RewardSpec]] = {}
    remote: list[tuple[RemoteScorer, dict[str, Any]]] = []
    names: dict[str, str] = {} if env is None else {env: f"--env {env}"}

    def claim(name: str, label: str) -> None:
        if name in names:
            raise ConfigurationError(
                f"config key 'rewards': two rewards are named {name!r} ({names[name]} and {label})"
            )
        names[name] = label

    try:
        for spec in specs:
            if spec.target is not None:
                for fn in load_target(spec.target):
                    claim(fn.name, spec.label)
                    local[fn.name] = (fn, spec)
            else:
                scorer = RemoteScorer(spec)
                remote.append((scorer, {}))
                info = await scorer.describe()
                assert spec.function is not None
                claim(spec.function, spec.label)
                remote[-1] = (scorer, info)
    except BaseException:
        for scorer, _ in remote:
            await scorer.close()
        raise
    rewards: list[Reward] = []
    local_scorer = None
    if local:
        local_scorer = LocalScorer({n: fn for n, (fn, _) in local.items()}, scoring)
        for name, (fn, spec) in local.items():
            threshold = _threshold(spec, scoring)
            info = {"target": spec.target, "source": fn.source, "mode": fn.mode, **_hashes(fn)}
            rewards.append(Reward(name, fn.mode, threshold, local_scorer, info))
    for scorer, info in remote:
        spec = scorer.spec
        assert spec.function is not None
        rewards.append(
            Reward(
                spec.function,
                str(info.get("mode", "pointwise")),
                _threshold(spec, scoring),
                scorer,
                {"url": spec.url, "function": spec.function, **info},
            )
        )
    return rewards, local_scorer, [s for s, _ in remote]


def _threshold(spec: RewardSpec, scoring: ScoringConfig) -> float:
    return spec.pass_threshold if spec.pass_threshold is not None else scoring.pass_threshold


def _hashes(fn: RewardFunction[Any]) -> dict[str, str | None]:
    """sha256 of the function's own source and of the whole file it is defined in (helpers
    it calls live there too)."""
    function_hash = file_hash = None
    with contextlib.suppress(OSError, TypeError):
        function_hash = hashlib.sha256(inspect.getsource(fn.func).encode()).hexdigest()
    try:
        file = inspect.getsourcefile(fn.func)
        if file is not None:
            file_hash = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    except (OSError, TypeError):
        pass
    return {"function_sha256": function_hash, "file_sha256": file_hash}
