"""``POST /openrlhf/{function}``: OpenRLHF's remote reward-model protocol, unchanged.

OpenRLHF (``--reward.remote_url http://host:port/openrlhf/<fn>``; ``--remote_rm_url`` up to
0.10.1) posts ``{"query": [...], "prompts": [...], "labels": [...]}`` where each query is the
decoded prompt + response (special tokens kept), and reads ``{"rewards", "scores",
"extra_logs"}``.

* Each sample is scored as ``[user: prompt, assistant: query minus prompt]`` with its label as
  ``ground_truth`` (reward_kit._openrlhf).
* ``extra_logs`` has the same keys for every sample of a function (OpenRLHF merges a batch's
  per-sample logs key by key), by :class:`reward_kit._metric_keys.MetricKeys`'s rule: its
  declared metrics; with ``--openrlhf-on-error`` and none declared, only ``reward_kit_failed``
  (a failed sample has no metrics to show); else those of its first valid result, so replicas
  and restarts agree only if the function returns the same names every time.
* A sample whose prompt is not in its query is scored whole; that is logged once per function
  and counted in ``rk_openrlhf_prompt_not_found_total``.
* A sample that fails (any failed status, or ``is_score_valid: false``) fails the request with
  its error and the indices that failed: OpenRLHF's only "no reward" is a failed request (the
  sample keeps ``reward=None``). Only when the operator sets ``--openrlhf-on-error SCORE`` does
  such a sample get that number, flagged ``reward_kit_failed`` = 1.0 and logged here.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from .._errors import FunctionError, InvalidRequest
from .._metric_keys import MetricKeys, columns
from .._openrlhf import messages_of, prompt_found
from .._vocabulary import ERROR_FOR_STATUS
from ..engine import Call, Item, Outcome, parse_json
from ._routes import Service, json_response
from ._schemas import RESPONSES, with_name
from ._wire import pick_function

__all__ = ["add_openrlhf_route"]

logger = logging.getLogger("reward_kit.openrlhf")


def add_openrlhf_route(app: FastAPI, service: Service) -> None:
    """Register ``POST /openrlhf/{name}`` on ``app``."""
    on_error = service.settings.openrlhf_on_error
    # One per function for the server's life: the keys must not change between requests.
    logs = {
        name: MetricKeys(function=name, declared=fn.metrics, flag_failures=on_error is not None)
        for name, fn in service.functions.items()
    }
    unfound_warned: set[str] = set()

    def check_prompts(name: str, queries: list[str], prompts: list[str]) -> None:
        unfound = [
            i
            for i, (q, p) in enumerate(zip(queries, prompts, strict=True))
            if not prompt_found(q, p)
        ]
        if not unfound:
            return
        if service.metrics is not None:
            service.metrics.count_prompt_not_found(name, len(unfound))
        if name not in unfound_warned:
            unfound_warned.add(name)
            logger.warning(
                "openrlhf: %s: the prompt of sample %d is not in its query, so the whole query "
                "was scored as the response (logged once; counted in "
                "rk_openrlhf_prompt_not_found_total)",
                name,
                unfound[0],
            )

    async def openrlhf(request: Request) -> Response:
        fn = pick_function(service.functions, request.path_params["name"])
        body = await service.read_body(request)
        async with service.admit(request):
            queries, prompts, labels = _parse(parse_json(body), service.settings.max_batch_items)
            check_prompts(fn.name, queries, prompts)
            timeout = service.timeout_for(fn, service.override_timeout(request))
            calls = [
                Call(fn, Item(messages_of(q, p), label, {}), timeout)
                for q, p, label in zip(queries, prompts, labels, strict=True)
            ]
            outcomes = await service.run(calls)
        return json_response(_answer(fn.name, outcomes, logs[fn.name], on_error))

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
                "required": ["query", "prompts"],
                "properties": {
                    "query": {"type": "array", "items": {"type": "string"}},
                    "prompts": {"type": "array", "items": {"type": "string"}},
                    "labels": {"type": "array"},
                },
            }
        }
    }
}


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


def _failed(outcome: Outcome) -> bool:
    result = outcome.result
    return outcome.status != "ok" or result is None or not result.get("is_score_valid", True)


def _why(name: str, outcome: Outcome) -> tuple[type[Exception], str]:
    if outcome.error is not None:
        return ERROR_FOR_STATUS.get(outcome.status, FunctionError), outcome.error["message"]
    return FunctionError, f"{name} marked its score invalid"


def _answer(
    name: str, outcomes: list[Outcome], logs: MetricKeys, on_error: float | None
) -> dict[str, Any]:
    failed = [i for i, o in enumerate(outcomes) if _failed(o)]
    if failed and on_error is None:
        cls, message = _why(name, outcomes[failed[0]])
        raise cls(
            f"{len(failed)} of {len(outcomes)} sample(s) have no reward (indices "
            f"{failed[:20]}); first: {message}"
        )
    rewards: list[float] = [0.0] * len(outcomes)
    rows: list[dict[str, float]] = [{}] * len(outcomes)
    # Valid samples first: a function that declares no metrics learns its keys from them.
    skip = set(failed)
    for i, outcome in enumerate(outcomes):
        if i not in skip and outcome.result is not None:
            rewards[i] = float(outcome.result["score"])
            metrics = outcome.result.get("metrics") or {}
            rows[i] = logs.row({key: m["score"] for key, m in metrics.items()})
    for i in failed:
        assert on_error is not None
        _, message = _why(name, outcomes[i])
        logger.warning(
            "openrlhf: %s sample %d of %d failed (%s): %s; reward %g (--openrlhf-on-error)",
            name,
            i,
            len(outcomes),
            outcomes[i].status,
            message,
            on_error,
        )
        rewards[i] = on_error
        rows[i] = logs.row(None)
    return {"rewards": rewards, "scores": rewards, "extra_logs": columns(rows)}
