"""One live session: its owner, its process, its ledger, and the clock the reaper reads."""

from __future__ import annotations

import asyncio
import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from ._authoring import Environment
from ._forkserver import SessionProcess
from ._ledger import StepRecord, Trajectory

__all__ = ["Session", "iso"]


def iso(epoch: float) -> str:
    """An epoch time as ISO 8601 UTC (what the HTTP answers carry)."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(kw_only=True, eq=False)
class Session:
    """A session of ``env`` owned by ``owner`` (the caller's identity)."""

    id: str
    env: type[Environment]
    owner: str
    process: SessionProcess
    seed: int
    task: Any
    observation: str
    state_hash: str
    idle_ttl: float
    max_lifetime: float
    status: str = "active"
    steps: list[StepRecord] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)
    created_epoch: float = field(default_factory=time.time)
    last_activity: float = field(default_factory=time.monotonic)
    busy: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def expires_in(self, now: float) -> float:
        """Seconds until the reaper may end this session."""
        idle = self.last_activity + self.idle_ttl - now
        return min(idle, self.created + self.max_lifetime - now)

    def expires_at(self) -> str:
        return iso(time.time() + max(0.0, self.expires_in(time.monotonic())))

    def trajectory(self) -> Trajectory:
        return Trajectory(
            env=self.env.name,
            seed=self.seed,
            task=self.task,
            observation=self.observation,
            status=self.status,
            steps=list(self.steps),
        )

    def describe(self) -> dict[str, Any]:
        """What ``GET /envs/{env}/sessions/{id}`` answers."""
        return {
            "session_id": self.id,
            "env": self.env.name,
            "status": self.status,
            "step": len(self.steps),
            "max_steps": self.env.max_steps,
            "reward": sum(step.reward for step in self.steps),
            "state_hash": self.state_hash,
            "seed": self.seed,
            "created_at": iso(self.created_epoch),
            "expires_at": self.expires_at(),
        }
