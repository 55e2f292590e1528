"""Upstream reward-kit 0.4's remote-URL flows against a real server, with exactly the requests
upstream sends (docs/compat.md, "Remote evaluator URLs"):

* its Fireworks shim (``reward-kit deploy --remote-url URL``) posts ``{messages, ground_truth,
  tools, kwargs}`` to URL as registered, with ``Content-Type: application/json`` and no
  credential;
* ``reward-kit preview --remote-url URL`` posts ``{messages, ground_truth, kwargs}`` (other
  sample fields in ``kwargs``) to URL + ``/evaluate`` and reads the answer as an
  ``EvaluateResult``.

``http://host/fn/<name>`` serves both, for any one of several functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reward_kit.models import EvaluateResult
from reward_kit.service import ServeSettings, create_app

from ..conftest import FIXTURES, LiveServer, error_of

REWARDS = str(FIXTURES / "service_rewards.py")
KEY = "rk-test-upstream-remote-url-key"
MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
TOOLS = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]


def shim_post(url: str, payload: dict[str, Any], **headers: str) -> httpx.Response:
    """What upstream's generated main.py does for one sample."""
    return httpx.post(
        url, json=payload, headers={"Content-Type": "application/json", **headers}, timeout=30
    )


def shim_payload(ground_truth: Any, tools: Any = None, **kwargs: Any) -> dict[str, Any]:
    return {"messages": MESSAGES, "ground_truth": ground_truth, "tools": tools, "kwargs": kwargs}


@pytest.fixture(scope="module")
def open_server() -> Iterator[str]:
    """No auth: the only kind of server upstream's shim, which sends no credential, can call
    (on a private network; see compat.md)."""
    settings = ServeSettings(targets=(REWARDS,), workers=1)
    with LiveServer(create_app(settings=settings)) as live:
        yield live.url


@pytest.mark.parametrize("suffix", ["", "/evaluate"])
def test_the_upstream_shim_reaches_one_of_several_functions(open_server: str, suffix: str) -> None:
    # A tool-call ground truth (a dict) and a test-case list: upstream's own server refused
    # both with a 422 (its ground_truth was a string) and dropped `tools`.
    ground_truth = {"tool_calls": [{"name": "add", "arguments": {"a": 1}}]}
    echoed = shim_post(f"{open_server}/fn/echo{suffix}", shim_payload(ground_truth, lang="en"))
    assert echoed.status_code == 200, echoed.text
    answer = echoed.json()
    assert (answer["score"], answer["function"]) == (1.0, "echo")
    seen = json.loads(answer["reason"])
    assert seen["ground_truth"] == ground_truth
    assert seen["kwargs"] == {"lang": "en"}  # the shim's kwargs, unnested

    cases = [{"input": "1", "expected_output": "2"}]
    named = shim_post(f"{open_server}/fn/named_only{suffix}", shim_payload(cases, tools=TOOLS))
    assert named.status_code == 200, named.text
    assert json.loads(named.json()["reason"]) == {"tools": TOOLS, "gt": cases}


def test_upstream_preview_appends_evaluate_to_the_function_base(open_server: str) -> None:
    remote_url = f"{open_server}/fn/echo/"  # as a user might type it; preview strips the '/'
    evaluate_endpoint = f"{remote_url.rstrip('/')}/evaluate"
    sample = {"messages": MESSAGES, "ground_truth": "4", "id": "s1", "lang": "en"}
    payload = {
        "messages": sample["messages"],
        "ground_truth": sample["ground_truth"],
        "kwargs": {k: v for k, v in sample.items() if k not in ("messages", "ground_truth")},
    }
    response = httpx.post(evaluate_endpoint, json=payload, timeout=30)
    response.raise_for_status()
    result = EvaluateResult(**response.json())  # what preview prints from
    assert (result.score, result.is_score_valid) == (1.0, True)
    assert json.loads(result.reason or "")["kwargs"] == {"id": "s1", "lang": "en"}


def test_a_function_base_names_a_served_function(open_server: str) -> None:
    unknown = shim_post(f"{open_server}/fn/nope", shim_payload("4"))
    assert "served: async_fn, echo" in error_of(unknown, 404, "unknown_function")
    error_of(shim_post(f"{open_server}/fn/echo/other", shim_payload("4")), 404, "not_found")
    # A function that fails is an error answer, never a score the shim could pass on as 0.
    failed = shim_post(f"{open_server}/fn/failing", shim_payload("4"))
    error_of(failed, 500, "function_error")


def test_function_bases_require_auth_like_every_route() -> None:
    settings = ServeSettings(targets=(REWARDS,), workers=1, api_keys=(KEY,))
    with LiveServer(create_app(settings=settings)) as live:
        url = f"{live.url}/fn/echo"
        # Upstream's shim sends no credential: refused, like any other request.
        error_of(shim_post(url, shim_payload("4")), 401, "unauthenticated")
        error_of(shim_post(f"{url}/evaluate", shim_payload("4")), 401, "unauthenticated")
        # A key in the URL is not a credential: URLs end up in logs and Fireworks' records.
        error_of(shim_post(f"{url}?api_key={KEY}", shim_payload("4")), 401, "unauthenticated")
        # Upstream's own server read X-Api-Key, which is accepted here too.
        assert shim_post(url, shim_payload("4"), **{"X-Api-Key": KEY}).status_code == 200
        bearer = shim_post(url, shim_payload("4"), Authorization=f"Bearer {KEY}")
        assert bearer.status_code == 200
