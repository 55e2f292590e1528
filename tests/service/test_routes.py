"""Every route through the ASGI app: compatible bodies, results, and every bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reward_kit.service import ServeSettings, create_app

from ..conftest import error_of

REWARDS = str(Path(__file__).parent.parent / "fixtures" / "service_rewards.py")
MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = ServeSettings(
        targets=(REWARDS,),
        workers=2,
        max_body_bytes=20_000,
        max_batch_items=50,
        max_timeout=20,
        timeout=10,
    )
    with TestClient(
        create_app(settings=settings), base_url="http://localhost", raise_server_exceptions=False
    ) as client:
        yield client


def seen(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return json.loads(response.json()["reason"])  # type: ignore[no-any-return]


def test_health_and_functions(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert "echo" in health["functions"]
    listed = {f["name"]: f for f in client.get("/functions").json()["functions"]}
    assert listed["echo"]["doc"].startswith("Echoes")
    assert listed["echo"]["timeout"] == 10
    assert listed["group_relative"]["mode"] == "batch"
    assert listed["threaded"]["isolation"] == "thread"
    assert listed["async_fn"]["is_async"]


def test_generic_server_body(client: TestClient) -> None:
    body = {"messages": MESSAGES, "ground_truth": "4", "kwargs": {"lang": "en"}}
    response = client.post("/evaluate/echo", json=body)
    assert seen(response) == {"last": "4", "ground_truth": "4", "kwargs": {"lang": "en"}}
    assert response.json()["function"] == "echo"
    assert response.json()["duration_ms"] >= 0


def test_fireworks_shim_body_with_any_json_ground_truth_and_tools(client: TestClient) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    body = {"messages": MESSAGES, "ground_truth": {"calls": [1, 2]}, "tools": tools, "kwargs": {}}
    got = seen(client.post("/evaluate/echo", json=body))
    assert got["ground_truth"] == {"calls": [1, 2]}
    assert got["kwargs"] == {"tools": tools}


def test_flat_remote_body_and_function_field(client: TestClient) -> None:
    body = {"messages": MESSAGES, "ground_truth": "4", "function": "echo", "temperature": 0.2}
    assert seen(client.post("/evaluate", json=body))["kwargs"] == {"temperature": 0.2}
    assert seen(client.post("/reward", json=body))["kwargs"] == {"temperature": 0.2}


def test_function_gets_only_what_it_names(client: TestClient) -> None:
    body = {"messages": MESSAGES, "ground_truth": [1], "tools": [{"x": 1}], "unrelated": 5}
    assert seen(client.post("/evaluate/named_only", json=body)) == {"tools": [{"x": 1}], "gt": [1]}


def test_each_isolation(client: TestClient) -> None:
    assert client.post("/evaluate/threaded", json={"messages": MESSAGES}).json()["score"] == 0.75
    assert client.post("/evaluate/async_fn", json={"messages": MESSAGES}).json()["score"] == 0.5


def test_batch_in_order_with_per_item_failures(client: TestClient) -> None:
    items = [
        {"messages": MESSAGES, "ground_truth": "a"},
        "not an object",
        {"messages": []},
        {"messages": MESSAGES, "function": "failing"},
        {"messages": MESSAGES, "function": "nope"},
        {"messages": MESSAGES, "ground_truth": "b", "kwargs": {"k": 1}},
    ]
    results = client.post("/batch_evaluate/echo", json={"items": items}).json()["results"]
    assert [r["index"] for r in results] == list(range(6))
    assert [r["status"] for r in results] == ["ok", "invalid", "invalid", "error", "invalid", "ok"]
    assert json.loads(results[5]["result"]["reason"])["kwargs"] == {"k": 1}
    assert results[1]["error"]["message"] == "items.1: expected a JSON object, got a string"
    assert "items.2.messages: List should have at least 1 item" in results[2]["error"]["message"]
    assert results[3]["error"] == {
        "code": "function_error",
        "message": "RuntimeError: reward exploded",
    }
    assert results[4]["error"]["code"] == "unknown_function"
    assert results[0]["result"]["score"] == 1.0
    assert results[0]["error"] is None


def test_batch_mode_function_receives_the_whole_list(client: TestClient) -> None:
    items = [
        {"messages": [{"role": "assistant", "content": "x" * n}], "ground_truth": n}
        for n in (1, 2, 3)
    ]
    results = client.post("/batch_evaluate", json={"items": items, "function": "group_relative"})
    assert [r["result"]["score"] for r in results.json()["results"]] == [-1.0, 0.0, 1.0]
    assert [r["result"]["reason"] for r in results.json()["results"]] == ["gt=1", "gt=2", "gt=3"]


def test_function_errors_and_timeouts_on_single_evaluate(client: TestClient) -> None:
    message = error_of(
        client.post("/evaluate/failing", json={"messages": MESSAGES}), 500, "function_error"
    )
    assert message == "RuntimeError: reward exploded"
    slow = {"messages": MESSAGES, "seconds": 5}
    message = error_of(client.post("/evaluate/slow?timeout=0.5", json=slow), 504, "timeout")
    assert "0.5s deadline" in message
    error_of(
        client.post("/evaluate/async_fn", json={"messages": MESSAGES, "delay": 3}), 504, "timeout"
    )


@pytest.mark.parametrize(
    ("path", "content", "status", "code", "needle"),
    [
        ("/evaluate/echo", b"{not json", 400, "invalid_json", "not valid JSON"),
        ("/evaluate/echo", b"", 400, "invalid_json", "body is empty"),
        (
            "/evaluate/echo",
            b"[1, 2]",
            422,
            "invalid_request",
            "body: expected a JSON object, got an array",
        ),
        ("/evaluate/echo", b"{}", 422, "invalid_request", "messages: Field required"),
        (
            "/evaluate/echo",
            b'{"messages": "hi"}',
            422,
            "invalid_request",
            "messages: Input should be a valid list",
        ),
        (
            "/evaluate/echo",
            b'{"messages": [{"content": "x"}]}',
            422,
            "invalid_request",
            "messages.0.role: Field required",
        ),
        (
            "/evaluate/echo",
            b'{"messages": [{"role": "user"}], "kwargs": []}',
            422,
            "invalid_request",
            "kwargs: Input should be a valid dictionary",
        ),
        (
            "/evaluate/echo",
            b'{"messages": [{"role": "user"}], "a": 1, "kwargs": {"a": 2}}',
            422,
            "invalid_request",
            "'a' given both",
        ),
        (
            "/evaluate/echo",
            b'{"messages": [{"role": "user"}], "function": "slow"}',
            422,
            "invalid_request",
            "names both",
        ),
        ("/evaluate", b'{"messages": [{"role": "user"}]}', 400, "function_required", "name one"),
        (
            "/evaluate/nope",
            b'{"messages": [{"role": "user"}]}',
            404,
            "unknown_function",
            "served: async_fn, echo,",
        ),
        (
            "/evaluate/echo?timeout=abc",
            b'{"messages": [{"role": "user"}]}',
            422,
            "invalid_request",
            "timeout: expected a positive number",
        ),
        (
            "/evaluate/echo?timeout=99",
            b'{"messages": [{"role": "user"}]}',
            422,
            "invalid_request",
            "above this server's maximum of 20s",
        ),
        (
            "/batch_evaluate/echo",
            b'{"items": {}}',
            422,
            "invalid_request",
            "items: Input should be a valid list",
        ),
        (
            "/batch_evaluate/echo",
            b'{"items": [], "kwargs": {}}',
            422,
            "invalid_request",
            "unexpected field(s) 'kwargs'",
        ),
        (
            "/batch_evaluate/echo",
            json.dumps({"items": [{}] * 51}).encode(),
            413,
            "payload_too_large",
            "at most 50 (--max-batch-items)",
        ),
        (
            "/evaluate/echo",
            b'{"messages": [], "pad": "' + b"x" * 30_000 + b'"}',
            413,
            "payload_too_large",
            "--max-body-bytes",
        ),
    ],
)
def test_bad_input(
    client: TestClient, path: str, content: bytes, status: int, code: str, needle: str
) -> None:
    message = error_of(client.post(path, content=content, headers=JSON), status, code)
    assert needle in message


def test_chunked_body_over_the_limit_is_refused(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"messages": [], "pad": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}'

    response = client.post("/evaluate/echo", content=chunks(), headers=JSON)
    error_of(response, 413, "payload_too_large")


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    error_of(client.get("/nowhere"), 404, "not_found")
    error_of(client.get("/evaluate"), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/health", "/functions", "/metrics", "/openapi.json"])
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8",
     "application/vnd.rk+json", 'application/json; charset="utf8"'],
)  # fmt: skip
def test_json_media_types_are_accepted(client: TestClient, content_type: str) -> None:
    body = json.dumps({"messages": MESSAGES}).encode()
    response = client.post("/evaluate/echo", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "content_type", "needle"),
    [
        ("/evaluate/echo", None, "no Content-Type"),
        ("/evaluate/echo", "text/plain", "'text/plain'"),
        ("/batch_evaluate/echo", "application/x-www-form-urlencoded", "x-www-form-urlencoded"),
        ("/reward", "multipart/form-data; boundary=x", "multipart/form-data"),
        ("/openrlhf/echo", "text/plain;charset=utf-8", "'text/plain'"),
        ("/evaluate/echo", "application/json; charset=latin-1", "charset='latin-1'"),
        ("/evaluate/echo", "application/jsonx", "application/jsonx"),
    ],
)
def test_bodies_not_declared_json_are_415(
    client: TestClient, path: str, content_type: str | None, needle: str
) -> None:
    body = json.dumps({"messages": MESSAGES, "function": "echo"}).encode()
    headers = {"content-type": content_type} if content_type else {}
    message = error_of(
        client.post(path, content=body, headers=headers), 415, "unsupported_media_type"
    )
    assert needle in message
    assert "Content-Type: application/json" in message


@pytest.mark.parametrize(
    ("path", "item", "name"),
    [
        ("/evaluate/echo", {"kwargs": {"messages": []}}, "messages"),
        ("/evaluate/echo", {"kwargs": {"ground_truth": "5"}}, "ground_truth"),
        ("/evaluate/named_only", {"kwargs": {"messages": "x"}}, "messages"),
        ("/batch_evaluate/group_relative", {"rollouts_messages": []}, "rollouts_messages"),
        ("/batch_evaluate/group_relative", {"kwargs": {"ground_truths": [1]}}, "ground_truths"),
    ],
)
def test_reserved_keyword_arguments_are_the_requests_fault(
    client: TestClient, path: str, item: dict[str, Any], name: str
) -> None:
    item = {"messages": MESSAGES, **item}
    if path.startswith("/batch"):
        (result,) = client.post(path, json={"items": [item]}).json()["results"]
        assert (result["status"], result["error"]["code"]) == ("invalid", "invalid_request")
        message = result["error"]["message"]
        assert message.startswith("items.0.kwargs: ")
    else:
        message = error_of(client.post(path, json=item), 422, "invalid_request")
    assert f"{name!r} cannot be a keyword argument" in message


def test_openapi_documents_the_wire_format(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/batch_evaluate"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/BatchEvaluateRequest"
    assert {"EvaluateRequest", "BatchItemResult", "ErrorResponse", "Message"} <= set(
        schema["components"]["schemas"]
    )
