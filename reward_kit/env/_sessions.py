"""The sessions a server holds: create, step, evaluate, delete, and the reaper.

Every session is owned by the caller's identity; another caller gets the same answer as for an
id that never existed. At ``max_sessions`` a create is refused with a ``Retry-After`` (when a
slot is likely to free up, see _capacity.py), never queued. A tool call that overruns the
environment's ``step_timeout``, a crash and a memory blow-up each end that session's process,
and only it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

from .._errors import (
    EvaluationTimeout,
    FunctionError,
    Overloaded,
    SessionEnded,
    SessionGone,
    UnknownEnvironment,
    UnknownSession,
)
from .._models import EvaluateResult, Message, ToolCall
from ._authoring import Environment
from ._capacity import LifetimeEstimate
from ._forkserver import ForkServer, SessionProcess
from ._ledger import LedgerEntry, VerificationReport, verify_transcript
from ._session import Session
from ._steps import run_step
from ._wire import FrameError

__all__ = ["SessionManager", "group_seed"]

logger = logging.getLogger("reward_kit.env")

_TOMBSTONES = 10_000


def group_seed(env: str, group_id: str) -> int:
    """The seed every session of one ``group_id`` starts from (63 bits).

    >>> group_seed("guess", "g1") == group_seed("guess", "g1") != group_seed("guess", "g2")
    True
    """
    digest = hashlib.sha256(f"{env}\0{group_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class SessionManager:
    """Holds the sessions of ``environments``; start with :meth:`start`, end with :meth:`close`."""

    def __init__(
        self,
        *,
        environments: dict[str, type[Environment]],
        forkserver: ForkServer,
        max_sessions: int,
        idle_ttl: float,
        max_lifetime: float,
        verify: str,
    ) -> None:
        self.environments = environments
        self.forkserver = forkserver
        self.max_sessions = max_sessions
        self.idle_ttl = idle_ttl
        self.max_lifetime = max_lifetime
        self.verify = verify
        self._sessions: dict[str, Session] = {}
        self._gone: collections.OrderedDict[str, tuple[str, str, str]] = collections.OrderedDict()
        self._starting = 0
        self._reaper: asyncio.Task[None] | None = None
        self._lifetimes = LifetimeEstimate()
        # Counters for /metrics (event-loop thread only).
        self.created: dict[str, int] = {}
        self.steps: dict[tuple[str, str], int] = {}
        self.kills: dict[str, int] = {}
        self.reaped: dict[str, int] = {}

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.forkserver.start()
        self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for session in list(self._sessions.values()):
            session.process.kill()
        self._sessions.clear()
        await self.forkserver.close()

    def capacity(self) -> dict[str, int]:
        """Sessions open (starting included) and the most allowed, for ``/health``."""
        return {"open": len(self._sessions) + self._starting, "max": self.max_sessions}

    def live(self) -> dict[str, int]:
        """Open sessions by status."""
        counts: dict[str, int] = {}
        for session in self._sessions.values():
            counts[session.status] = counts.get(session.status, 0) + 1
        return counts

    # -- the routes' operations ---------------------------------------------------------------

    def environment(self, name: str) -> type[Environment]:
        cls = self.environments.get(name)
        if cls is None:
            served = ", ".join(sorted(self.environments)) or "none"
            raise UnknownEnvironment(f"no environment {name!r}; served: {served}")
        return cls

    def describe(self, name: str) -> dict[str, Any]:
        return {
            **self.environment(name).describe(),
            "idle_ttl": self.idle_ttl,
            "max_lifetime": self.max_lifetime,
            "verify": self.verify,
        }

    async def create(
        self, owner: str, name: str, *, task: Any, seed: int | None, group_id: str | None
    ) -> dict[str, Any]:
        cls = self.environment(name)
        if len(self._sessions) + self._starting >= self.max_sessions:
            raise Overloaded(
                f"{self.max_sessions} environment sessions are open (--env-max-sessions); "
                "close some with DELETE or retry later",
                retry_after=self._retry_after(),
            )
        if seed is None:
            seed = group_seed(name, group_id) if group_id is not None else secrets.randbits(63)
        self._starting += 1
        try:
            process = await self.forkserver.spawn(name)
            try:
                reply = await self._ask(process, {"op": "reset", "task": task, "seed": seed}, cls)
            except BaseException:
                process.kill()
                raise
        finally:
            self._starting -= 1
        if "error" in reply:
            process.kill()
            raise FunctionError(f"{name}.reset failed: {reply['error']}")
        session = Session(
            id=secrets.token_urlsafe(16),
            env=cls,
            owner=owner,
            process=process,
            seed=seed,
            task=task,
            observation=reply["observation"],
            state_hash=reply["state_hash"],
            idle_ttl=self.idle_ttl,
            max_lifetime=self.max_lifetime,
        )
        self._sessions[session.id] = session
        self.created[name] = self.created.get(name, 0) + 1
        return {
            "session_id": session.id,
            "env": name,
            "observation": session.observation,
            "tools": [t.schema() for t in cls.tools().values()],
            "seed": seed,
            "max_steps": cls.max_steps,
            "step_timeout": float(cls.step_timeout),
            "expires_at": session.expires_at(),
        }

    def status(self, owner: str, name: str, session_id: str) -> dict[str, Any]:
        return self._find(owner, name, session_id).describe()

    async def step(
        self, owner: str, name: str, session_id: str, tool_calls: Sequence[ToolCall]
    ) -> dict[str, Any]:
        session = self._find(owner, name, session_id)
        async with session.lock:
            if session.status != "active":
                raise SessionEnded(f"session {session_id} is {session.status}: no more steps")
            session.busy += 1
            session.touch()
            try:
                record = await run_step(session, tool_calls, self._kill)
                for call in record.calls:
                    key = (name, call.status)
                    self.steps[key] = self.steps.get(key, 0) + 1
            finally:
                session.busy -= 1
                session.touch()
        return {
            "results": [
                {
                    "tool_call_id": c.tool_call_id,
                    "status": c.status,
                    "content": c.content,
                    "reward": c.reward,
                    "done": c.done,
                }
                for c in record.calls
            ],
            "step": len(session.steps),
            "reward": record.reward,
            "done": session.status != "active",
            "status": session.status,
            "state_hash": session.state_hash,
        }

    async def evaluate(
        self, owner: str, name: str, session_id: str, messages: list[Message] | None
    ) -> dict[str, Any]:
        session = self._find(owner, name, session_id)
        async with session.lock:
            session.touch()
            trajectory = session.trajectory()
            cls = session.env
            if cls.score is Environment.score:
                result = trajectory.default_result()
            else:
                if not session.process.alive:
                    raise SessionEnded(
                        f"session {session_id} failed: its process is gone, so "
                        f"{name}.score() cannot run"
                    )
                request = {"op": "score", "trajectory": trajectory.model_dump(mode="json")}
                reply = await self._ask(session.process, request, cls, session)
                if "error" in reply:
                    raise FunctionError(f"{name}.score failed: {reply['error']}")
                result = EvaluateResult.model_validate(reply["result"])
            if result.step_outputs is None:
                result.step_outputs = trajectory.step_outputs()
        report = self._verify(messages, trajectory.ledger)
        if report is not None and self.verify == "enforce" and not report.ok:
            result.is_score_valid = False
            result.reason = f"{result.reason or ''} [transcript does not match the ledger]".strip()
        return {
            **result.model_dump(mode="json"),
            "session_id": session_id,
            "env": name,
            "status": session.status,
            "verification": None if report is None else report.model_dump(mode="json"),
        }

    async def final_state(
        self, owner: str, name: str, session_id: str
    ) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
        """The environment's ``state()`` (None when its process is gone), the ledger, and the
        server's transcript: what a ``@reward_function`` is given as ``env_state``,
        ``tool_ledger`` and (when the caller sends none) ``messages``."""
        session = self._find(owner, name, session_id)
        async with session.lock:
            session.touch()
            state = None
            if session.process.alive:
                reply = await self._ask(session.process, {"op": "state"}, session.env, session)
                if "error" in reply:
                    raise FunctionError(f"{name}.state failed: {reply['error']}")
                state = reply["state"]
            trajectory = session.trajectory()
            ledger = [e.model_dump(mode="json") for e in trajectory.ledger]
            transcript = [
                m.model_dump(mode="json", exclude_none=True) for m in trajectory.messages()
            ]
        return state, ledger, transcript

    def delete(self, owner: str, name: str, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            gone = self._gone.get(session_id)
            if gone is None or gone[:2] != (owner, name):
                raise UnknownSession(f"no session {session_id!r} of {name!r}")
            return
        if session.owner != owner or session.env.name != name:
            raise UnknownSession(f"no session {session_id!r} of {name!r}")
        self._end(session, "closed")

    # -- internals ------------------------------------------------------------------------------

    def _find(self, owner: str, name: str, session_id: str) -> Session:
        self.environment(name)
        session = self._sessions.get(session_id)
        if session is not None and session.owner == owner and session.env.name == name:
            return session
        gone = self._gone.get(session_id)
        if session is None and gone is not None and gone[:2] == (owner, name):
            raise SessionGone(f"session {session_id} was {gone[2]}; its process is gone")
        raise UnknownSession(f"no session {session_id!r} of {name!r}")

    def _end(self, session: Session, why: str) -> None:
        session.process.kill()
        if self._sessions.pop(session.id, None) is not None:
            self._lifetimes.ended(time.monotonic() - session.created)
        self._gone[session.id] = (session.owner, session.env.name, why)
        while len(self._gone) > _TOMBSTONES:
            self._gone.popitem(last=False)

    def _kill(self, session: Session, reason: str) -> None:
        session.process.kill()
        session.status = "failed"
        self.kills[reason] = self.kills.get(reason, 0) + 1

    async def _ask(
        self,
        process: SessionProcess,
        request: dict[str, Any],
        cls: type[Environment],
        session: Session | None = None,
    ) -> Any:
        try:
            return await process.request(request, float(cls.step_timeout))
        except asyncio.TimeoutError:
            process.kill()
            if session is not None:
                self._kill(session, "timeout")
            raise EvaluationTimeout(
                f"{cls.name}.{request['op']} ran past the step timeout ({cls.step_timeout}s)"
            ) from None
        except (FrameError, OSError):
            process.kill()
            if session is not None:
                self._kill(session, "crashed")
            raise FunctionError(f"{cls.name}: the session's process died") from None

    def _verify(
        self, messages: list[Message] | None, ledger: list[LedgerEntry]
    ) -> VerificationReport | None:
        if self.verify == "off":
            return None
        if messages is None:
            return VerificationReport(checked=False)
        return verify_transcript(messages, ledger)

    def _retry_after(self) -> float:
        now = time.monotonic()
        open_sessions = self._sessions.values()
        soonest = min((s.expires_in(now) for s in open_sessions), default=0.0)
        return self._lifetimes.retry_after((now - s.created for s in open_sessions), soonest)

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(5.0, self.idle_ttl / 4, self.max_lifetime / 4))
        while True:
            await asyncio.sleep(interval)
            self.reap()

    def reap(self) -> int:
        """End the sessions idle past ``idle_ttl`` or alive past ``max_lifetime``."""
        now = time.monotonic()
        ended = 0
        for session in list(self._sessions.values()):
            if now - session.created > session.max_lifetime:
                reason = "lifetime"
            elif not session.busy and now - session.last_activity > session.idle_ttl:
                reason = "idle"
            else:
                continue
            logger.info("reaping session %s of %s (%s)", session.id, session.env.name, reason)
            self._end(session, "expired")
            self.reaped[reason] = self.reaped.get(reason, 0) + 1
            ended += 1
        return ended
