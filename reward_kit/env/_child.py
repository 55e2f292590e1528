"""Inside a session's process: one environment instance, answering the server's requests.

The process is its own process group (so killing the group ends whatever a tool started), is
SIGKILLed by the kernel when the fork server dies, and runs under an address-space limit: a
tool that exhausts it ends this session, never the server.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import resource
import signal
import socket
import sys
from typing import Any

from .._models import EvaluateResult
from ._authoring import Environment, ToolResult
from ._ledger import Trajectory, state_hash
from ._wire import FrameError, decode, recv_frame, send_frame

__all__ = ["die_with_parent", "make_subreaper", "run_session"]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def make_subreaper() -> None:
    """Become the reaper of this process's orphaned descendants (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def run_session(sock: socket.socket, cls: type[Environment], memory_limit_mb: int | None) -> None:
    """Serve one session on ``sock`` until the server closes it; never returns normally."""
    os.setsid()
    die_with_parent()
    # What a tool starts and detaches stays below this process, where the fork server's
    # clean-up finds it, instead of escaping to init.
    make_subreaper()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if memory_limit_mb:
        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    env = cls()
    stream = sock.makefile("rb", buffering=65536)
    while True:
        try:
            request = recv_frame(stream)
        except (FrameError, OSError):
            os._exit(0)
        try:
            reply = _answer(env, request)
        except MemoryError:
            reply, fatal = {"error": "MemoryError: over the session's memory limit"}, True
        else:
            fatal = bool(reply.get("fatal", False))
        try:
            send_frame(sock, reply)
        except (FrameError, OSError, ValueError):
            os._exit(1)
        if fatal:
            os._exit(1)


def _answer(env: Environment, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "call":
        return _call(env, request["name"], request.get("arguments"))
    try:
        if op == "reset":
            observation = env.reset(task=request.get("task"), seed=request.get("seed"))
            if not isinstance(observation, str):
                raise TypeError(f"reset() returned {type(observation).__name__}, not str")
            return {"observation": observation, "state_hash": state_hash(env.state())}
        if op == "state":
            return {"state": json.loads(json.dumps(env.state(), default=repr))}
        if op == "score":
            result = env.score(Trajectory.model_validate(request["trajectory"]))
            if isinstance(result, bool) or not isinstance(result, (EvaluateResult, int, float)):
                raise TypeError(f"score() returned {type(result).__name__}")
            if not isinstance(result, EvaluateResult):
                result = EvaluateResult(score=float(result))
            return {"result": result.model_dump(mode="json")}
    except MemoryError:
        raise
    except Exception as error:
        return {"error": f"{op}: {type(error).__name__}: {error}"}
    return {"error": f"unknown request {op!r}"}


def _call(env: Environment, name: str, arguments: Any) -> dict[str, Any]:
    tools = type(env).tools()
    found = tools.get(name)
    if found is None:
        known = ", ".join(sorted(tools)) or "none"
        return _result("invalid", f"unknown tool {name!r}; tools: {known}")
    if isinstance(arguments, str):
        try:
            arguments = decode(arguments.encode()) if arguments.strip() else {}
        except ValueError as error:
            return _result("invalid", f"arguments of {name} are not valid JSON: {error}")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return _result("invalid", f"arguments of {name} must be a JSON object")
    try:
        checked = found.validate(arguments)
    except ValueError as error:
        return _result("invalid", str(error))
    try:
        value = found.function(env, **checked)
    except MemoryError:
        return {**_result("error", "MemoryError: over the session's memory limit"), "fatal": True}
    except Exception as error:
        return _result("error", f"{type(error).__name__}: {error}")
    if isinstance(value, str):
        value = ToolResult(content=value)
    if not isinstance(value, ToolResult):
        return _result("error", f"tool {name} returned {type(value).__name__}, not ToolResult")
    reward = float(value.reward)
    if not math.isfinite(reward):
        return _result("error", f"tool {name} returned a reward of {reward}")
    return {
        **_result("ok", str(value.content), reward, bool(value.done)),
        "state_hash": state_hash(env.state()),
    }


def _result(status: str, content: str, reward: float = 0.0, done: bool = False) -> dict[str, Any]:
    return {"status": status, "content": content, "reward": reward, "done": done}
