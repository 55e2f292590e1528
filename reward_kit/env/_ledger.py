"""The record of what a session executed, and the check of a caller's transcript against it.

Every call the server answers goes into the session's ledger: its id, tool name, a hash of the
canonical arguments, a hash of the output, reward and status. A trainer's transcript is then
checked message by message: a tool message the server never produced is *forged*, one whose
output (or whose call's name or arguments) differs is *altered*, an executed call the
transcript leaves out is *missing*, and an assistant tool call that was never sent to the
server is *never executed*.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from .._models import EvaluateResult, FunctionCall, Message, StepOutput, ToolCall

__all__ = [
    "CallStatus",
    "LedgerEntry",
    "StepRecord",
    "Trajectory",
    "VerificationReport",
    "arguments_hash",
    "content_hash",
    "state_hash",
    "verify_transcript",
]

CallStatus = Literal["ok", "error", "invalid", "timeout"]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def arguments_hash(arguments: Any) -> str:
    """The hash of a call's arguments, canonical: key order and spacing do not matter; a JSON
    string and the object it encodes hash alike (an unparsable string hashes as itself).

    >>> arguments_hash('{"b": 1, "a": 2}') == arguments_hash({"a": 2, "b": 1})
    True
    """
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return _digest(arguments.encode())
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=repr)
    return _digest(canonical.encode())


def content_hash(content: str) -> str:
    """The hash of a tool's output text."""
    return _digest(content.encode())


def state_hash(state: Any) -> str:
    """The hash of an environment's state (canonical JSON; other values by their repr)."""
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), default=repr)
    return _digest(canonical.encode())


class LedgerEntry(BaseModel):
    """One call the server answered."""

    step: int
    tool_call_id: str
    name: str
    arguments: Any = None
    arguments_hash: str
    content: str
    output_hash: str
    reward: float = 0.0
    status: CallStatus
    done: bool = False


class StepRecord(BaseModel):
    """One step: the calls of one assistant turn, in order."""

    index: int
    calls: list[LedgerEntry] = Field(default_factory=list)

    @property
    def reward(self) -> float:
        """The sum of the step's call rewards."""
        return sum(call.reward for call in self.calls)


class Trajectory(BaseModel):
    """What happened in a session: its start, and every step (what ``score`` is given)."""

    env: str
    seed: int
    task: Any = None
    observation: str
    status: str
    steps: list[StepRecord] = Field(default_factory=list)

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Every answered call, in order."""
        return [call for step in self.steps for call in step.calls]

    @property
    def total_reward(self) -> float:
        """The sum of all step rewards."""
        return sum(step.reward for step in self.steps)

    def messages(self) -> list[Message]:
        """The transcript as the server saw it: the first observation as a user message, then
        per step the assistant's tool calls and one tool message per call."""
        transcript = [Message(role="user", content=self.observation)]
        for step in self.steps:
            calls = [
                ToolCall(
                    id=c.tool_call_id,
                    function=FunctionCall(name=c.name, arguments=json.dumps(c.arguments)),
                )
                for c in step.calls
            ]
            transcript.append(Message(role="assistant", content="", tool_calls=calls))
            transcript += [
                Message(role="tool", tool_call_id=c.tool_call_id, name=c.name, content=c.content)
                for c in step.calls
            ]
        return transcript

    def step_outputs(self) -> list[StepOutput]:
        """One :class:`StepOutput` per step, ``step_index`` counted from 0."""
        return [
            StepOutput(
                step_index=step.index,
                base_reward=step.reward,
                metrics={"calls": len(step.calls)},
                reason=", ".join(f"{c.name}:{c.status}" for c in step.calls) or None,
            )
            for step in self.steps
        ]

    def default_result(self) -> EvaluateResult:
        """The default score: the sum of the step rewards, with one step output per step."""
        return EvaluateResult(
            score=self.total_reward,
            reason=f"sum of {len(self.steps)} step reward(s); session {self.status}",
            step_outputs=self.step_outputs(),
        )


class VerificationReport(BaseModel):
    """The transcript check: tool_call_ids in each category (empty lists when it matched)."""

    checked: bool = True
    matched: int = 0
    forged: list[str] = Field(default_factory=list)
    altered: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    never_executed: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the transcript shows exactly what the server executed."""
        return not (self.forged or self.altered or self.missing or self.never_executed)


def verify_transcript(
    messages: Sequence[Message], ledger: Iterable[LedgerEntry]
) -> VerificationReport:
    """Check a transcript's tool calls and tool messages against the ledger.

    >>> entry = LedgerEntry(step=0, tool_call_id="c1", name="guess", arguments={"n": 5},
    ...     arguments_hash=arguments_hash({"n": 5}), content="higher",
    ...     output_hash=content_hash("higher"), status="ok")
    >>> call = {"id": "c1", "function": {"name": "guess", "arguments": '{"n": 5}'}}
    >>> transcript = [Message(role="assistant", content="", tool_calls=[call]),
    ...               Message(role="tool", tool_call_id="c1", content="lower")]
    >>> verify_transcript(transcript, [entry]).altered
    ['c1']
    """
    by_id: dict[str, LedgerEntry] = {}
    for executed in ledger:  # a repeated id was answered invalid: the first one counts
        by_id.setdefault(executed.tool_call_id, executed)
    report = VerificationReport()
    called: dict[str, tuple[str, str]] = {}
    answered: set[str] = set()
    for index, message in enumerate(messages):
        for call in message.tool_calls or ():
            call_id = call.id or f"#{index}"
            called[call_id] = (call.function.name, arguments_hash(call.function.arguments))
            if call_id not in by_id:
                report.never_executed.append(call_id)
        if message.role != "tool":
            continue
        call_id = message.tool_call_id or f"#{index}"
        entry = by_id.get(call_id)
        if entry is None:
            report.forged.append(call_id)
            continue
        answered.add(call_id)
        text = message.text
        claimed = called.get(call_id)
        altered = content_hash(text) != entry.output_hash or (
            claimed is not None and claimed != (entry.name, entry.arguments_hash)
        )
        if altered:
            report.altered.append(call_id)
        else:
            report.matched += 1
    report.missing = [call_id for call_id in by_id if call_id not in answered]
    return report
