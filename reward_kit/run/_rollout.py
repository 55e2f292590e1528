"""``rk run --env NAME``: multi-turn rollouts in a served environment.

Each sample is one session, opened with the sample's seed (so a rerun replays the same start).
The environment's first observation is appended to the prompt's last user message and its
tools are offered to the model; every reply's tool calls go to the session, their results come
back as ``tool`` messages, until the session is done, the model answers without a tool call,
or ``env.max_turns`` replies. A session that cannot be opened fails only its sample (status
``env_session``, never scored), except an auth error or an unknown environment, which stop the
run as a generation auth error does. The session's evaluation (sent the whole transcript, so
the server checks it against its ledger) is the sample's reward named after the environment, and
other rewards score the whole transcript. Rollouts are not cached: each turn depends on the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .._errors import (
    AuthenticationError,
    ConfigurationError,
    PermissionDenied,
    RewardKitError,
    UnknownEnvironment,
)
from ..sdk import ApiKey
from ..sdk.env import AsyncEnvClient, AsyncEnvSession
from ._config import EnvConfig
from ._generate import Generator, Reply
from ._pipeline import row_for
from ._routing import Router, Sample
from ._score import Reward

__all__ = ["EnvRollouts", "env_reward", "open_env"]

# Every other session would fail the same way: the run stops (see _pipeline._until_first_error).
_FATAL_OPEN_ERRORS = (AuthenticationError, PermissionDenied, UnknownEnvironment)


class _NoScorer:
    """The env reward is filled in by the rollout itself, never by the router."""

    async def score(self, name: str, items: Any) -> list[dict[str, Any]]:
        raise AssertionError(f"the {name} reward comes from its rollout")


@dataclass
class EnvRollouts:
    """An open client to the environment's server, and how to roll a sample out in it."""

    client: AsyncEnvClient
    name: str
    max_turns: int
    described: dict[str, Any]

    def reward(self, pass_threshold: float) -> Reward:
        """The reward the rollouts fill in."""
        return env_reward(
            self.name, pass_threshold, {"url": self.client.config.url, **self.described}
        )

    async def worker(
        self, jobs: Iterator[list[Sample]], generator: Generator, scoring: Router
    ) -> None:
        for job in jobs:
            for sample in job:
                await self.rollout(sample, generator)
                scoring.generated(sample)

    async def rollout(self, sample: Sample, generator: Generator) -> None:
        """Play one sample; fills ``sample.row`` (with ``env`` and the env reward entry)."""
        task = sample.prompt.kwargs.get("task")
        try:
            session = await self.client.session(self.name, seed=sample.seed, task=task)
        except _FATAL_OPEN_ERRORS:
            raise
        except RewardKitError as error:  # at capacity after the retries, reset() raised...
            self._not_opened(sample, error)
            return
        try:
            await self._play(sample, session, generator)
        finally:
            await session.aclose()

    def _not_opened(self, sample: Sample, error: RewardKitError) -> None:
        message = f"the {self.name} session could not be opened: {error}"
        row_for(sample, Reply("env_session", [], None, 0, message), None, cached=False)
        sample.row["env"] = {
            "name": self.name,
            "session_id": None,
            "status": "not_opened",
            "steps": 0,
            "step_rewards": [],
            "done": False,
            "turns": [],
            "error": message,
        }

    async def _play(self, sample: Sample, session: AsyncEnvSession, generator: Generator) -> None:
        prompt = _with_observation(sample.prompt.messages, session.observation)
        body = {**sample.body, "messages": prompt, "tools": session.tools}
        turns: list[dict[str, Any]] = []
        usage: dict[str, int] = {}
        rewards: list[float] = []
        attempts, reply, last, failure = 0, None, None, None
        used: set[str] = set()
        for _ in range(self.max_turns):
            reply = await generator.complete({**body, "messages": [*prompt, *turns]})
            attempts += reply.attempts
            _add_usage(usage, reply)
            if reply.status != "ok":
                last = None
                break
            last = reply.choices[0]
            calls = _unique_ids(last.tool_calls or [], used)
            message: dict[str, Any] = {"role": "assistant", "content": last.content}
            if calls:
                message["tool_calls"] = calls
            turns.append(message)
            if not calls:
                break
            try:
                step = await session.step(calls)
            except RewardKitError as error:  # e.g. 409: a tool overran and the session failed
                failure = f"step failed: {error}"
                break
            rewards.append(step.reward)
            turns += [
                {"role": "tool", "tool_call_id": r.tool_call_id, "content": r.content}
                for r in step.results
            ]
            if step.done:
                break
        assert reply is not None  # max_turns >= 1
        summed = Reply(reply.status, reply.choices, usage or None, attempts, reply.error)
        row_for(sample, summed, last, cached=False)
        sample.row["messages"] = prompt
        state = await session.state()
        sample.row["env"] = {
            "name": self.name,
            "session_id": session.session_id,
            "status": state.get("status"),
            "steps": len(rewards),
            "step_rewards": rewards,
            "done": session.done,
            "turns": turns,
        }
        if failure is not None:
            sample.row["env"]["error"] = failure
        sample.row["rewards"][self.name] = await self._evaluate(session, [*prompt, *turns])

    async def _evaluate(
        self, session: AsyncEnvSession, transcript: list[dict[str, Any]]
    ) -> dict[str, Any]:
        try:
            result = await session.evaluate(transcript)
        except RewardKitError as error:  # never a 0: the entry says what failed
            return {
                "score": None,
                "is_score_valid": False,
                "reason": f"evaluate failed: {error}",
                "metrics": {},
                "status": "error",
            }
        data = result.model_dump(mode="json")
        return {
            "score": data["score"],
            "is_score_valid": data["is_score_valid"],
            "reason": data.get("reason"),
            "metrics": data.get("metrics") or {},
            "status": "ok",
            "step_outputs": data.get("step_outputs") or [],
            "verification": data.get("verification"),
        }


def env_reward(name: str, pass_threshold: float, info: dict[str, Any]) -> Reward:
    """The reward named after the environment (mode ``env``: its entry comes with the sample,
    from the rollout, so the router never scores it; ``--rescore`` keeps it)."""
    return Reward(name, "env", pass_threshold, _NoScorer(), {"env": name, **info})


async def open_env(config: EnvConfig) -> EnvRollouts:
    """Connect to the environment's server and check it serves ``config.name``."""
    assert config.name is not None
    auth: Any = None
    if config.api_key_env is not None:
        key = os.environ.get(config.api_key_env)
        if not key:
            raise ConfigurationError(
                f"config key 'env.api_key_env': the environment variable {config.api_key_env} "
                "is not set (it must hold the server's API key)"
            )
        auth = ApiKey(key)
    client = AsyncEnvClient(config.url, auth=auth)
    try:
        described = await client.describe(config.name)
    except RewardKitError as error:
        await client.aclose()
        raise ConfigurationError(f"config key 'env.name': {config.name!r}: {error}") from error
    limits: dict[str, Any] = {
        k: described.get(k) for k in ("max_steps", "step_timeout") if k in described
    }
    return EnvRollouts(client, config.name, config.max_turns, limits)


def _with_observation(messages: list[dict[str, Any]], observation: str) -> list[dict[str, Any]]:
    # As TRL's environment_factory does: the observation joins the last user message.
    if not observation:
        return list(messages)
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            joined = {**message, "content": f"{message['content']}\n\n{observation}"}
            return [*messages[:index], joined, *messages[index + 1 :]]
    return [*messages, {"role": "user", "content": observation}]


def _unique_ids(calls: list[Any], used: set[str]) -> list[Any]:
    """The calls, each with an id not used before in this rollout. The server refuses a
    repeated tool_call_id (its ledger is keyed by them), and some servers send ``call_0`` every
    turn or none at all; the transcript carries the same ids, so it still verifies."""
    out = []
    for call in calls:
        if isinstance(call, dict):
            call_id = call.get("id")
            if not isinstance(call_id, str) or not call_id or call_id in used:
                call = {**call, "id": f"call_{len(used) + 1}"}
                while call["id"] in used:
                    call["id"] += "_"
            used.add(call["id"])
        out.append(call)
    return out


def _add_usage(total: dict[str, int], reply: Reply) -> None:
    for key, value in (reply.usage or {}).items():
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value
