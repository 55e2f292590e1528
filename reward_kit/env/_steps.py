"""One step of a session: its tool calls, run in order in the session's process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from .._models import ToolCall
from ._ledger import LedgerEntry, StepRecord, arguments_hash, content_hash
from ._session import Session
from ._wire import FrameError

__all__ = ["run_step"]


async def run_step(
    session: Session, tool_calls: Sequence[ToolCall], kill: Callable[[Session, str], None]
) -> StepRecord:
    """Run one step's calls in order and record them in the session's ledger. ``kill``
    ends the session's process (with a reason for the metrics) when a call overruns the
    step timeout, crashes it or exhausts its memory."""
    index = len(session.steps)
    record = StepRecord(index=index)
    seen = {entry.tool_call_id for entry in session.trajectory().ledger}
    timeout = float(session.env.step_timeout)
    for position, call in enumerate(tool_calls):
        call_id = call.id or f"call_{index}_{position}"
        name, raw = call.function.name, call.function.arguments
        if call_id in seen:
            status, content, reward, done = (
                "invalid",
                f"duplicate tool_call_id {call_id!r}",
                0.0,
                False,
            )
        elif session.status != "active":
            status, reward, done = "error", 0.0, False
            content = f"not run: the session is {session.status}"
        else:
            status, content, reward, done = await _call(session, name, raw, timeout, kill)
        seen.add(call_id)
        record.calls.append(
            LedgerEntry(
                step=index,
                tool_call_id=call_id,
                name=name,
                arguments=_parsed(raw),
                arguments_hash=arguments_hash(raw),
                content=content,
                output_hash=content_hash(content),
                reward=reward,
                status=status,  # type: ignore[arg-type]
                done=done,
            )
        )
        if done and session.status == "active":
            session.status = "done"
    session.steps.append(record)
    if session.status == "active" and len(session.steps) >= session.env.max_steps:
        session.status = "truncated"
    return record


async def _call(
    session: Session,
    name: str,
    arguments: Any,
    timeout: float,
    kill: Callable[[Session, str], None],
) -> tuple[str, str, float, bool]:
    request = {"op": "call", "name": name, "arguments": arguments}
    try:
        reply = await session.process.request(request, timeout)
    except asyncio.TimeoutError:
        kill(session, "timeout")
        return (
            "timeout",
            f"{name} ran past the step timeout ({timeout:g}s); session ended",
            0.0,
            False,
        )
    except (FrameError, OSError):
        kill(session, "crashed")
        return (
            "error",
            f"{name} ended the session's process (crash or memory limit)",
            0.0,
            False,
        )
    if reply.get("fatal"):
        kill(session, "memory")
    if "state_hash" in reply:
        session.state_hash = reply["state_hash"]
    return reply["status"], reply["content"], float(reply["reward"]), bool(reply["done"])


def _parsed(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments
    return arguments
