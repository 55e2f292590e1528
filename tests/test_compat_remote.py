"""Upstream's RewardFunction(mode="remote") against a real evaluator (uvicorn on loopback,
serving tests/sdk/rewards.py with an API key): through the SDK, with its auth and retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from reward_kit import AuthenticationError, EvaluatorUnavailable, FunctionError, PermissionDenied
from reward_kit.reward_function import RewardFunction
from reward_kit.sdk import ApiKey, EvaluatorClient

from .conftest import LiveServer, free_port, rk_serve
from .sdk.conftest import KEY, CountingTransport, make_server

CHAT = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "four"}]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with make_server() as live:
        yield live


def received(result: Any) -> dict[str, Any]:
    """What the served ``echo`` function got, from the reason it returns."""
    return json.loads(result.reason)  # type: ignore[no-any-return]


def test_upstream_endpoint_url_with_the_default_credential(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)  # the SDK's default credential, sent to loopback
    fn = RewardFunction(mode="remote", endpoint=f"{server.url}/evaluate/echo", level=1, tag="a")
    try:
        result = fn(CHAT, ground_truth={"answer": 4}, tag="b")
    finally:
        fn.close()
    assert result.score == 0.04
    got = received(result)
    assert got["texts"] == ["2+2?", "four"]
    assert got["ground_truth"] == {"answer": 4}  # any JSON, not only strings
    assert got["kwargs"] == {"level": 1, "tag": "b"}  # defaults, and the call's own win


@pytest.mark.parametrize("path", ["", "/", "/reward", "/evaluate"])
def test_base_url_and_upstream_route_forms_with_a_name(server: LiveServer, path: str) -> None:
    client = EvaluatorClient(server.url, auth=ApiKey(KEY))
    fn = RewardFunction(mode="remote", endpoint=client, name="echo")
    assert fn(CHAT).score == 0.04
    fn.close()
    assert client.health()["status"]  # a client it was given is not closed
    client.close()
    by_url = RewardFunction(mode="remote", endpoint=server.url + path, name="echo")
    assert by_url.client().config.url == server.url
    by_url.close()


def test_a_url_and_a_name_that_disagree_are_refused(server: LiveServer) -> None:
    with pytest.raises(ValueError, match="endpoint names function 'echo' but name='fails'"):
        RewardFunction(mode="remote", endpoint=f"{server.url}/evaluate/echo", name="fails")


def test_failures_raise_typed_errors_never_a_zero(server: LiveServer) -> None:
    anonymous = RewardFunction(mode="remote", endpoint=EvaluatorClient(server.url, auth=False))
    with pytest.raises(AuthenticationError):
        anonymous(CHAT)
    wrong = EvaluatorClient(server.url, auth=ApiKey("not-the-key-0123456789"))
    with pytest.raises(PermissionDenied):
        RewardFunction(mode="remote", endpoint=wrong, name="echo")(CHAT)
    right = EvaluatorClient(server.url, auth=ApiKey(KEY))
    with pytest.raises(FunctionError, match="broken reward"):
        RewardFunction(mode="remote", endpoint=right, name="fails")(CHAT)
    for client in (anonymous.client(), wrong, right):
        client.close()


def test_an_unreachable_evaluator_is_retried_then_raises() -> None:
    transport = CountingTransport()
    client = EvaluatorClient(f"http://127.0.0.1:{free_port()}", max_retries=2, transport=transport)
    with pytest.raises(EvaluatorUnavailable):
        RewardFunction(mode="remote", endpoint=client)(CHAT)
    assert transport.paths == ["/evaluate"] * 3
    client.close()


def test_remote_trl_adapter_is_one_batched_request_with_none_for_failures(
    server: LiveServer,
) -> None:
    transport = CountingTransport()
    client = EvaluatorClient(server.url, auth=ApiKey(KEY), transport=transport)
    fn = RewardFunction(mode="remote", endpoint=client, name="echo", tag="t")
    adapter = fn.get_trl_adapter()
    extra: dict[str, list[Any]] = {}
    rewards = adapter(
        prompts=["1+1?", "2+2?", "3+3?"],
        completions=["2", "four", "6"],
        completion_ids=[[1], [2], [3]],
        solution=["2", "4", "6"],
        behaviour=["good", "raise", "invalid"],
        trainer_state=object(),
        log_extra=extra.__setitem__,
    )
    assert rewards == [0.01, None, None]  # an error and an invalid score are None, never 0
    assert transport.paths == ["/batch_evaluate"]
    assert adapter.__name__ == "echo"
    first = json.loads(extra["echo/reason"][0])
    assert first["ground_truth"] == "2"
    assert first["kwargs"] == {"tag": "t"}  # the RewardFunction's defaults travel as columns
    adapter.close()
    client.close()


UPSTREAM_MODULE = """
from typing import List

from reward_kit.models import EvaluateResult, Message, MetricResult
from reward_kit.typed_interface import reward_function


@reward_function
def typed(messages: List[Message], ground_truth: List[Message], **kwargs) -> EvaluateResult:
    same = messages[-1].content == ground_truth[-1].content
    return EvaluateResult(
        score=float(same),
        reason="compared",
        metrics={"same": MetricResult(score=float(same), success=same, reason="content")},
    )


@reward_function
def untyped(messages, **kwargs):
    return {"score": float(messages[-1]["content"] == "4"), "reason": str(sorted(kwargs))}
"""


def test_upstream_code_served_by_rk_serve_in_a_worker_process(tmp_path: Any) -> None:
    path = tmp_path / "upstream_rewards.py"
    path.write_text(UPSTREAM_MODULE)
    with rk_serve(str(path), "--workers", "1") as url:
        typed = RewardFunction(mode="remote", endpoint=f"{url}/evaluate/typed")
        truth = [{"role": "assistant", "content": "four"}]
        result = typed(CHAT, ground_truth=truth)
        assert (result.score, result.metrics["same"].reason) == (1.0, "content")
        untyped = RewardFunction(mode="remote", endpoint=url, name="untyped", level=2)
        assert untyped([{"role": "assistant", "content": "4"}]).reason == "['level']"
        adapter = untyped.get_trl_adapter()
        assert adapter(prompts=["2+2?", "3+3?"], completions=["4", "5"]) == [1.0, 0.0]
        adapter.close()
        typed.close()
        untyped.close()


def test_the_fireworks_key_is_never_sent(
    live_server: type[LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Upstream's remote mode sent FIREWORKS_API_KEY as the bearer token to any endpoint.
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: list[str | None] = []

    async def evaluate(request: Request) -> JSONResponse:
        seen.append(request.headers.get("authorization"))
        return JSONResponse({"score": 1.0})

    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-secret-0123456789")
    app = Starlette(routes=[Route("/evaluate", evaluate, methods=["POST"])])
    with live_server(app) as server:
        fn = RewardFunction(mode="remote", endpoint=f"{server.url}/reward")
        assert fn(CHAT).score == 1.0
        fn.close()
        monkeypatch.setenv("RK_API_KEY", KEY)  # the SDK's own default credential is sent
        fn = RewardFunction(mode="remote", endpoint=server.url)
        assert fn(CHAT).score == 1.0
        fn.close()
    assert seen == [None, f"Bearer {KEY}"]
