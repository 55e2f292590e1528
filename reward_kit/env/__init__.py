"""Multi-step agent environments: author them here, serve them with ``rk-serve envs.py``.

An :class:`Environment` holds one episode's state; its :func:`tool` methods are what the model
may call, each answering with a :class:`ToolResult` (text, reward, done). The server runs every
session in its own killable process and keeps a ledger of the calls it executed, against which
a trainer's transcript is verified. See docs/environments.md.

>>> class Echo(Environment):
...     def reset(self, *, task=None, seed=None):
...         return "say something"
...     @tool
...     def say(self, text: str) -> ToolResult:
...         '''Repeat the text.'''
...         return ToolResult(content=text, reward=1.0, done=True)
>>> Echo.name, [t["function"]["name"] for t in Echo.describe()["tools"]]
('echo', ['say'])
"""

from __future__ import annotations

from ._authoring import Environment, Tool, ToolResult, tool
from ._discovery import find_environments
from ._forkserver import ForkServer, SessionProcess
from ._ledger import (
    CallStatus,
    LedgerEntry,
    StepRecord,
    Trajectory,
    VerificationReport,
    arguments_hash,
    content_hash,
    state_hash,
    verify_transcript,
)
from ._sessions import SessionManager, group_seed

__all__ = [
    "CallStatus",
    "Environment",
    "ForkServer",
    "LedgerEntry",
    "SessionManager",
    "SessionProcess",
    "StepRecord",
    "Tool",
    "ToolResult",
    "Trajectory",
    "VerificationReport",
    "arguments_hash",
    "content_hash",
    "find_environments",
    "group_seed",
    "state_hash",
    "tool",
    "verify_transcript",
]
