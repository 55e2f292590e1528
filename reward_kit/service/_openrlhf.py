"""``POST /openrlhf/{function}``: OpenRLHF's remote reward-model protocol, unchanged.

OpenRLHF (``--reward.remote_url http://host:port/openrlhf/<fn>``) posts
``{"query": [...], "prompts": [...], "labels": [...]}`` where each query is the decoded
prompt + response (special tokens kept), and reads ``{"rewards", "scores", "extra_logs"}``.

* The completion is the query minus its prompt: the text after the first occurrence of the
  prompt in the query (the whole query when the prompt does not occur in it).
* Each sample is scored as ``[user: prompt, assistant: completion]`` with its label as
  ``ground_truth``.
* OpenRLHF's only "no reward" signal is a failed request (the sample keeps ``reward=None``),
  so if any item fails, or returns ``is_score_valid: false``, the request fails with that
  item's error and the indices that failed. No number is ever made up for it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from .._errors import FunctionError, InvalidRequest
from .._vocabulary import ERROR_FOR_STATUS
from ..engine import Call, Item, Outcome, parse_json
from ._routes import Service, json_response
from ._schemas import RESPONSES, with_name
from ._wire import pick_function

__all__ = ["add_openrlhf_route", "completion_of"]


def add_openrlhf_route(app: FastAPI, service: Service) -> None:
    """Register ``POST /openrlhf/{name}`` on ``app``."""

    async def openrlhf(request: Request) -> Response:
        fn = pick_function(service.functions, request.path_params["name"])
        body = await service.read_body(request)
        with service.admit():
            queries, prompts, labels = _parse(parse_json(body), service.settings.max_batch_items)
            timeout = service.timeout_for(fn, service.override_timeout(request))
            calls = [
                Call(fn, Item(_messages(q, p), label, {}), timeout)
                for q, p, label in zip(queries, prompts, labels, strict=True)
            ]
            outcomes = await service.run(calls)
        return json_response(_answer(fn.name, outcomes))

    app.add_api_route(
        "/openrlhf/{name}",
        openrlhf,
        methods=["POST"],
        tags=["integrations"],
        openapi_extra=with_name({"requestBody": {"required": True, **_OPENRLHF_BODY}}),
        responses={
            200: {"description": "{rewards, scores, extra_logs}"},
            **{k: v for k, v in RESPONSES["evaluate"].items() if k != 200},
        },
    )


_OPENRLHF_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["query"],
                "properties": {
                    "query": {"type": "array", "items": {"type": "string"}},
                    "prompts": {"type": "array", "items": {"type": "string"}},
                    "labels": {"type": "array"},
                },
            }
        }
    }
}


def completion_of(query: str, prompt: str) -> str:
    """The response part of an OpenRLHF query.

    >>> completion_of("<s>Q: 2+2?\\nA: 4</s>", "Q: 2+2?\\nA:")
    ' 4</s>'
    """
    at = query.find(prompt) if prompt else -1
    return query[at + len(prompt) :] if at >= 0 else query


def _messages(query: str, prompt: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": completion_of(query, prompt)},
    ]


def _parse(body: Any, max_items: int) -> tuple[list[str], list[str], list[Any]]:
    if not isinstance(body, dict):
        raise InvalidRequest("body: expected {'query': [...], 'prompts': [...], 'labels': [...]}")
    queries, prompts = body.get("query"), body.get("prompts")
    labels = body.get("labels")
    for field, value in (("query", queries), ("prompts", prompts)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"{field}: expected a list of strings")
    assert isinstance(queries, list)
    assert isinstance(prompts, list)
    if labels is None:
        labels = [None] * len(queries)
    if not isinstance(labels, list):
        raise InvalidRequest("labels: expected a list (or no field)")
    if not len(queries) == len(prompts) == len(labels):
        raise InvalidRequest(
            f"query, prompts and labels must have the same length; got {len(queries)}, "
            f"{len(prompts)} and {len(labels)}"
        )
    if len(queries) > max_items:
        raise InvalidRequest(f"{len(queries)} samples; this server accepts at most {max_items}")
    return queries, prompts, labels


def _answer(name: str, outcomes: list[Outcome]) -> dict[str, Any]:
    failed = [
        i
        for i, o in enumerate(outcomes)
        if o.status != "ok" or o.result is None or not o.result.get("is_score_valid", True)
    ]
    if failed:
        first = outcomes[failed[0]]
        if first.error is not None:
            cls = ERROR_FOR_STATUS.get(first.status, FunctionError)
            message = first.error["message"]
        else:
            cls, message = FunctionError, f"{name} marked its score invalid"
        raise cls(
            f"{len(failed)} of {len(outcomes)} sample(s) have no reward (indices "
            f"{failed[:20]}); first: {message}"
        )
    results = [o.result for o in outcomes if o.result is not None]
    rewards = [float(r["score"]) for r in results]
    # extra_logs are per-sample lists in OpenRLHF; only metrics every sample has line up.
    keys = [set(r.get("metrics") or {}) for r in results]
    shared = sorted(set.intersection(*keys)) if keys else []
    extra_logs = {key: [float(r["metrics"][key]["score"]) for r in results] for key in shared}
    return {"rewards": rewards, "scores": rewards, "extra_logs": extra_logs}
