"""The I/O-free core shared by :class:`EnvClient` and :class:`AsyncEnvClient`: the requests
of the environment routes, which failures may be retried, and what the answers mean.

A session lives in one server process, so unlike an evaluation, creating a session and taking
a step are not safe to repeat blindly: a step that reached the server ran its tools, and a
create that reached it opened a session. Those two are retried only when the server certainly
did not act (the connection never opened, or it answered 429 at capacity). Reads, ``evaluate``
and ``DELETE`` have no side effect a repeat could double, so they retry like evaluations.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from .._errors import InvalidResponse
from .._models import EvaluateResult
from ._core import Failure, Request, _plain, dumps, loads

__all__ = [
    "SessionEvaluation",
    "SessionInfo",
    "StepResult",
    "ToolCallResult",
    "create_request",
    "delete_request",
    "describe_request",
    "evaluate_request",
    "parse_evaluation",
    "parse_object",
    "parse_session",
    "parse_step",
    "safe_to_repeat",
    "state_request",
    "step_request",
    "tool_calls_of",
]

ToolStatus = Literal["ok", "error", "invalid", "timeout"]
_STATUSES = frozenset({"ok", "error", "invalid", "timeout"})
# Failures after which the server certainly did nothing: a non-idempotent request may go again.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, kw_only=True)
class ToolCallResult:
    """The server's answer to one tool call of a step."""

    tool_call_id: str
    status: ToolStatus
    content: str
    reward: float = 0.0
    done: bool = False


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """One step: a result per tool call (in call order), the step number, and whether the
    session is over (the environment said done, ``max_steps`` truncated it, or it failed:
    ``status`` says which)."""

    results: tuple[ToolCallResult, ...]
    step: int
    done: bool
    status: str = "active"
    state_hash: str | None = None

    @property
    def reward(self) -> float:
        """The sum of this step's tool rewards."""
        return sum(result.reward for result in self.results)


@dataclass(frozen=True, kw_only=True)
class SessionInfo:
    """What ``POST /envs/{env}/sessions`` answered: the first observation and the tools."""

    env: str
    session_id: str
    observation: str
    tools: tuple[dict[str, Any], ...]
    expires_at: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _path(env: str, session_id: str | None = None, tail: str = "") -> str:
    path = f"/envs/{quote(env, safe='')}"
    if session_id is not None:
        path += f"/sessions/{quote(session_id, safe='')}"
    return path + tail


def create_request(
    env: str, *, task: Any = None, seed: int | None = None, group_id: str | None = None
) -> Request:
    body: dict[str, Any] = {}
    if task is not None:
        body["task"] = _plain(task)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        body["seed"] = seed
    if group_id is not None:
        body["group_id"] = str(group_id)
    return Request("POST", _path(env, tail="/sessions"), dumps(body))


def step_request(env: str, session_id: str, tool_calls: Sequence[Any]) -> Request:
    return Request("POST", _path(env, session_id, "/step"), dumps({"tool_calls": tool_calls}))


def describe_request(env: str) -> Request:
    return Request("GET", _path(env))


def state_request(env: str, session_id: str) -> Request:
    return Request("GET", _path(env, session_id))


def evaluate_request(
    env: str,
    session_id: str,
    messages: Sequence[Any] | None,
    *,
    function: str | None = None,
    ground_truth: Any = None,
    kwargs: Mapping[str, Any] | None = None,
) -> Request:
    body: dict[str, Any] = {} if messages is None else {"messages": _plain(list(messages))}
    if function is not None:
        body["function"] = function
        if ground_truth is not None:
            body["ground_truth"] = _plain(ground_truth)
        if kwargs:
            body["kwargs"] = _plain(dict(kwargs))
    elif ground_truth is not None or kwargs:
        raise TypeError("ground_truth and keyword arguments go to a reward function: name it")
    return Request("POST", _path(env, session_id, "/evaluate"), dumps(body))


def delete_request(env: str, session_id: str) -> Request:
    return Request("DELETE", _path(env, session_id))


def safe_to_repeat(request: Request, failure: Failure, error: BaseException | None) -> Failure:
    """``failure`` as retryable only when repeating ``request`` cannot do something twice."""
    if not failure.retryable or request.method != "POST":
        return failure
    if request.path.endswith("/evaluate"):
        return failure
    never_sent = isinstance(error, _NEVER_SENT) or failure.error.status == 429
    return failure if never_sent else Failure(failure.error, False)


def tool_calls_of(
    calls: Sequence[Any], counter: itertools.count[int], used: set[str] | None = None
) -> list[dict[str, Any]]:
    """OpenAI-format tool calls, from dicts, ``ToolCall`` models or ``(name, arguments)``
    pairs. A call without an id gets ``call_<n>``, one not in ``used`` (the session's ids so
    far; updated); arguments may be a dict or a JSON string (the server judges them: bad ones
    are an ``invalid`` result, not an exception here)."""
    used = set() if used is None else used
    out: list[dict[str, Any]] = []
    for call in calls:
        if isinstance(call, tuple) and len(call) == 2:
            name, arguments = call
            call = {"type": "function", "function": {"name": name, "arguments": arguments}}
        call = _plain(call)
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            raise TypeError(
                "tool_calls: each call must be an OpenAI tool call "
                '({"id", "type": "function", "function": {"name", "arguments"}}) '
                f"or a (name, arguments) pair, got {type(call).__name__}"
            )
        function = dict(call["function"])
        if not isinstance(function.get("arguments"), str):
            function["arguments"] = dumps(function.get("arguments") or {}).decode()
        call_id = str(call.get("id") or "")
        while not call_id or (call_id in used and not call.get("id")):
            call_id = f"call_{next(counter)}"
        used.add(call_id)
        out.append(
            {
                "id": call_id,
                "type": "function",
                "function": function,
            }
        )
    return out


def _json(response: httpx.Response) -> Any:
    try:
        return loads(response.content)
    except ValueError:
        raise InvalidResponse(
            f"the server answered {response.status_code} with a body that is not JSON"
        ) from None


def _field(payload: Any, name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidResponse(f"{where}: the server's answer has no valid {name!r}")
    return value


def parse_session(env: str, response: httpx.Response) -> SessionInfo:
    payload = _json(response)
    where = f"POST /envs/{env}/sessions"
    tools = _field(payload, "tools", list, where)
    known = {"session_id", "observation", "tools", "expires_at"}
    return SessionInfo(
        env=env,
        session_id=_field(payload, "session_id", str, where),
        observation=_field(payload, "observation", str, where),
        tools=tuple(tools),
        expires_at=payload.get("expires_at"),
        extra={k: v for k, v in payload.items() if k not in known},
    )


def parse_step(response: httpx.Response, sent: Sequence[dict[str, Any]]) -> StepResult:
    payload = _json(response)
    where = "POST .../step"
    raw = _field(payload, "results", list, where)
    if len(raw) != len(sent):
        raise InvalidResponse(f"{where}: {len(raw)} results for {len(sent)} tool calls")
    results = []
    for item in raw:
        status = _field(item, "status", str, where)
        if status not in _STATUSES:
            raise InvalidResponse(f"{where}: unknown tool result status {status!r}")
        content = item.get("content")
        results.append(
            ToolCallResult(
                tool_call_id=str(item.get("tool_call_id", "")),
                status=status,
                content=content if isinstance(content, str) else dumps(content).decode(),
                reward=float(item.get("reward") or 0.0),
                done=bool(item.get("done", False)),
            )
        )
    return StepResult(
        results=tuple(results),
        step=_field(payload, "step", int, where),
        done=bool(_field(payload, "done", bool, where)),
        status=str(payload.get("status", "active")),
        state_hash=payload.get("state_hash"),
    )


class SessionEvaluation(EvaluateResult):
    """A session's :class:`EvaluateResult`, with the session's final ``status`` and, when a
    transcript was sent, ``verification``: the tool_call_ids the server's ledger does not back
    (``forged``, ``altered``, ``missing``, ``unexecuted``...)."""

    session_id: str | None = None
    env: str | None = None
    status: str | None = None
    verification: dict[str, Any] | None = None
    function: str | None = None


def parse_evaluation(response: httpx.Response) -> SessionEvaluation:
    return SessionEvaluation.model_validate(_json(response))


def parse_object(response: httpx.Response) -> dict[str, Any]:
    payload = _json(response)
    if not isinstance(payload, dict):
        raise InvalidResponse("the server answered a JSON value that is not an object")
    return payload
