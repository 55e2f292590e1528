"""The ``/envs`` routes: multi-step environment sessions (docs/environments.md).

Thin: the body is read and checked here, the work is ``reward_kit.env.SessionManager``'s. A
session belongs to the caller's identity (``mode:subject``; ``anonymous`` without auth).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from .._errors import InvalidRequest
from .._models import EvaluateResult, Message, ToolCall
from .._vocabulary import ERROR_FOR_STATUS
from ..engine import Call, check_kwargs, default_memory_limit_mb, parse_item, parse_json
from ..env import ForkServer, SessionManager, find_environments
from ._env_metrics import EnvCollector
from ._routes import Service, json_response
from ._settings import ServeSettings
from ._wire import pick_function

__all__ = ["add_env_routes", "env_sessions"]

_CALLS = TypeAdapter(list[ToolCall])
_MESSAGES = TypeAdapter(list[Message])
# The request bodies, for the OpenAPI document (the handlers check them themselves).
_CREATE = {
    "type": "object",
    "properties": {
        "task": {"description": "passed to the environment's reset()"},
        "seed": {"type": "integer"},
        "group_id": {"type": "string", "description": "derives the seed when none is given"},
    },
    "additionalProperties": False,
}
_STEP = {
    "type": "object",
    "properties": {
        "tool_calls": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string", "enum": ["function"]},
                    "function": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "arguments": {"type": ["string", "object"]},
                        },
                        "required": ["name"],
                    },
                },
                "required": ["function"],
            },
        }
    },
    "required": ["tool_calls"],
}
_EVALUATE = {
    "type": "object",
    "properties": {
        "messages": {"type": "array", "items": {"type": "object"}},
        "function": {"type": "string", "description": "a served @reward_function to score with"},
    },
}


def add_env_routes(app: FastAPI, service: Service, sessions: SessionManager) -> None:
    """Register the ``/envs`` routes of ``sessions`` on ``app``."""
    routes = _EnvRoutes(service, sessions)
    app.state.env_sessions = sessions
    if service.metrics is not None:
        service.metrics.registry.register(EnvCollector(sessions))
    base = "/envs/{env}/sessions/{session_id}"
    for path, endpoint, method, status, body in (
        ("/envs", routes.list_envs, "GET", 200, None),
        ("/envs/{env}", routes.describe, "GET", 200, None),
        ("/envs/{env}/sessions", routes.create, "POST", 201, _CREATE),
        (base, routes.status, "GET", 200, None),
        (f"{base}/step", routes.step, "POST", 200, _STEP),
        (f"{base}/evaluate", routes.evaluate, "POST", 200, _EVALUATE),
        (base, routes.delete, "DELETE", 204, None),
    ):
        # The handlers take the raw Request: the OpenAPI document is told what they read.
        extra: dict[str, Any] = {
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", path)
            ]
        }
        if body is not None:
            content = {"application/json": {"schema": body}}
            extra["requestBody"] = {"required": True, "content": content}
        app.add_api_route(
            path,
            endpoint,
            methods=[method],
            tags=["environments"],
            status_code=status,
            openapi_extra=extra,
        )


class _EnvRoutes:
    def __init__(self, service: Service, sessions: SessionManager) -> None:
        self.service = service
        self.sessions = sessions

    async def list_envs(self, request: Request) -> Response:
        names = sorted(self.sessions.environments)
        return json_response({"envs": [self.sessions.describe(name) for name in names]})

    async def describe(self, request: Request) -> Response:
        return json_response(self.sessions.describe(request.path_params["env"]))

    async def create(self, request: Request) -> Response:
        env = request.path_params["env"]
        self.sessions.environment(env)
        body = await self._body(request)
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InvalidRequest(f"seed: expected an integer, got {seed!r}")
        group_id = body.get("group_id")
        if group_id is not None and not isinstance(group_id, str):
            raise InvalidRequest(f"group_id: expected a string, got {group_id!r}")
        unknown = set(body) - {"task", "seed", "group_id"}
        if unknown:
            raise InvalidRequest(f"unknown field(s) {', '.join(sorted(unknown))}")
        created = await self.sessions.create(
            _owner(request), env, task=body.get("task"), seed=seed, group_id=group_id
        )
        return json_response(created, status=201)

    async def status(self, request: Request) -> Response:
        env, session_id = request.path_params["env"], request.path_params["session_id"]
        return json_response(self.sessions.status(_owner(request), env, session_id))

    async def step(self, request: Request) -> Response:
        env, session_id = request.path_params["env"], request.path_params["session_id"]
        owner = _owner(request)
        self.sessions.status(owner, env, session_id)  # 404 before reading a stranger's body
        body = await self._body(request)
        raw = body.get("tool_calls")
        if not isinstance(raw, list) or not raw:
            raise InvalidRequest("tool_calls: expected a non-empty list of OpenAI tool calls")
        try:
            calls = _CALLS.validate_python(raw)
        except ValidationError as error:
            raise InvalidRequest(_problems("tool_calls", error)) from None
        return json_response(await self.sessions.step(owner, env, session_id, calls))

    async def evaluate(self, request: Request) -> Response:
        env, session_id = request.path_params["env"], request.path_params["session_id"]
        owner = _owner(request)
        self.sessions.status(owner, env, session_id)
        body = await self._body(request)
        messages = None
        if body.get("messages") is not None:
            try:
                messages = _MESSAGES.validate_python(body["messages"])
            except ValidationError as error:
                raise InvalidRequest(_problems("messages", error)) from None
        function = body.get("function")
        result = await self.sessions.evaluate(owner, env, session_id, messages)
        if function is not None:
            scored = await self._reward_function(request, body, owner, env, session_id)
            own = scored.model_dump(mode="json")
            own["step_outputs"] = own["step_outputs"] or result["step_outputs"]
            # enforce: a transcript that differs from the ledger invalidates any score.
            own["is_score_valid"] = own["is_score_valid"] and result["is_score_valid"]
            result = {**result, **own, "function": function}
        return json_response(result)

    async def delete(self, request: Request) -> Response:
        env, session_id = request.path_params["env"], request.path_params["session_id"]
        self.sessions.environment(env)
        self.sessions.delete(_owner(request), env, session_id)
        return Response(status_code=204)

    async def _body(self, request: Request) -> dict[str, Any]:
        body = parse_json(await self.service.read_body(request))
        if not isinstance(body, dict):
            raise InvalidRequest("body: expected a JSON object")
        return body

    async def _reward_function(
        self, request: Request, body: dict[str, Any], owner: str, env: str, session_id: str
    ) -> EvaluateResult:
        """A served ``@reward_function`` named by ``function``, given the transcript plus the
        session's final ``env_state`` and ``tool_ledger`` keyword arguments."""
        fn = pick_function(self.service.functions, body["function"])
        state, ledger, transcript = await self.sessions.final_state(owner, env, session_id)
        item_body = {k: v for k, v in body.items() if k != "function"}
        if item_body.get("messages") is None:
            item_body["messages"] = transcript
        item, _ = parse_item(item_body)
        check_kwargs(item, self.service.reserved[fn.name] | {"env_state", "tool_ledger"}, fn.name)
        item = item._replace(kwargs={**item.kwargs, "env_state": state, "tool_ledger": ledger})
        async with self.service.admit(request):
            (outcome,) = await self.service.run(
                [Call(fn, item, self.service.timeout_for(fn, None))]
            )
        if outcome.status != "ok" or outcome.result is None:
            error = outcome.error or {"message": "no result"}
            raise ERROR_FOR_STATUS[outcome.status](error["message"])
        return EvaluateResult.model_validate(outcome.result)


def _owner(request: Request) -> str:
    identity = request.scope.get("state", {}).get("identity")
    return "anonymous" if identity is None else str(identity)


def _problems(field: str, error: ValidationError) -> str:
    return "; ".join(
        f"{field}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
    )


def env_sessions(settings: ServeSettings, targets: list[str]) -> SessionManager | None:
    """The session manager of the environments ``targets`` define (None when they define
    none), with its limits and its metrics."""
    environments = find_environments(targets)
    if not environments:
        return None
    memory = settings.env_memory_limit_mb
    if memory is None:
        memory = default_memory_limit_mb(settings.env_max_sessions)
    return SessionManager(
        environments=environments,
        forkserver=ForkServer(
            targets=targets, memory_limit_mb=memory or None, env_drop=settings.worker_env_drop
        ),
        max_sessions=settings.env_max_sessions,
        idle_ttl=settings.env_idle_ttl,
        max_lifetime=settings.env_max_lifetime,
        verify=settings.env_verify,
    )
