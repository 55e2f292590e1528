"""Small hostile bodies: JSON nested deep enough to break pickling must be refused at parse time
(per item in a batch), and nothing a payload does may hang the worker pool past a deadline.

A ~1.2 KB body with an array nested 600 deep used to crash pebble's scheduler thread
(RecursionError while pickling the task): that request, and every request after it, hung.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from reward_kit import load_functions
from reward_kit.engine import MAX_JSON_DEPTH, Call, Engine, Item
from reward_kit.service import ServeSettings, create_app

from ..conftest import FIXTURES, error_of, rk_serve

REWARDS = str(FIXTURES / "service_rewards.py")
MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def nested(depth: int) -> Any:
    """An array nested ``depth`` levels deep: ``[[[...]]]``."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def deep_body(depth: int = 600) -> dict[str, Any]:
    return {"messages": MESSAGES, "x": nested(depth)}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = ServeSettings(targets=(REWARDS,), workers=1, timeout=10)
    with TestClient(
        create_app(settings=settings), base_url="http://localhost", raise_server_exceptions=False
    ) as client:
        yield client


def test_the_audited_body_is_small() -> None:
    assert len(json.dumps(deep_body())) < 1300


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (deep_body(), "x"),
        ({"messages": MESSAGES, "kwargs": {"x": nested(600)}}, "kwargs.x"),
        ({"messages": MESSAGES, "ground_truth": nested(600)}, "ground_truth"),
        ({"messages": MESSAGES, "tools": [nested(600)]}, "tools"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "x": nested(600)}]}]},
            "messages.0.content.0.x",
        ),
    ],
)
def test_over_deep_json_is_refused_naming_the_field_and_the_limit(
    client: TestClient, body: dict[str, Any], path: str
) -> None:
    message = error_of(client.post("/evaluate/echo", json=body), 422, "invalid_request")
    assert message.startswith(f"{path}: "), message
    assert f"at most {MAX_JSON_DEPTH} levels" in message
    # The server is fine afterwards.
    assert client.post("/evaluate/echo", json={"messages": MESSAGES}).status_code == 200


def test_nesting_up_to_the_limit_is_accepted(client: TestClient) -> None:
    # ``x`` counts as one level: an array nested MAX_JSON_DEPTH deep is exactly at the limit.
    response = client.post("/evaluate/echo", json=deep_body(MAX_JSON_DEPTH))
    assert response.status_code == 200, response.text
    refused = client.post("/evaluate/echo", json=deep_body(MAX_JSON_DEPTH + 1))
    error_of(refused, 422, "invalid_request")


def test_nesting_past_the_json_parser_limit_is_a_clear_400(client: TestClient) -> None:
    content = b'{"messages": [], "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    response = client.post(
        "/evaluate/echo", content=content, headers={"content-type": "application/json"}
    )
    message = error_of(response, 400, "invalid_json")
    assert "nested" in message
    assert f"at most {MAX_JSON_DEPTH} levels" in message


def test_an_over_deep_item_is_invalid_alone_in_its_batch(client: TestClient) -> None:
    good = {"messages": MESSAGES, "ground_truth": "4"}
    response = client.post("/batch_evaluate/echo", json={"items": [good, deep_body(), good]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ok", "invalid", "ok"]
    error = results[1]["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("items.1.x: ")
    assert f"at most {MAX_JSON_DEPTH} levels" in error["message"]


def test_unpicklable_arguments_are_an_invalid_item_not_a_broken_pool() -> None:
    # Past the wire's depth check (a direct Engine user, or a value the wire cannot see):
    # the engine pickles each task itself, so a payload that cannot be sent fails alone.
    functions = load_functions([REWARDS])
    echo = functions["echo"]

    async def scenario() -> list[Any]:
        async with Engine(functions=functions, workers=1) as engine:
            calls = [
                Call(echo, Item(MESSAGES, "4"), 5.0),
                Call(echo, Item(MESSAGES, None, {"x": nested(5000)}), 5.0),
                Call(echo, Item(MESSAGES, None, {"x": threading.Lock()}), 5.0),
                Call(echo, Item(MESSAGES, "4"), 5.0),
            ]
            first = await asyncio.wait_for(engine.run(calls), 30)
            # A single item takes the same path; the pool still serves afterwards.
            (single,) = await asyncio.wait_for(engine.run([calls[1]]), 30)
            (after,) = await asyncio.wait_for(engine.run([calls[0]]), 30)
            return [*first, single, after]

    outcomes = asyncio.run(scenario())
    assert [o.status for o in outcomes] == ["ok", "invalid", "invalid", "ok", "invalid", "ok"]
    assert "RecursionError" in outcomes[1].error["message"]
    assert "cannot be sent to a worker process" in outcomes[2].error["message"]


@pytest.mark.slow
def test_a_deep_body_never_hangs_a_real_server() -> None:
    with rk_serve(REWARDS, "--workers", "1") as url:
        answers: dict[str, httpx.Response] = {}

        def post(key: str, body: dict[str, Any]) -> None:
            answers[key] = httpx.post(f"{url}/evaluate/echo", json=body, timeout=20)

        threads = [
            threading.Thread(target=post, args=("deep", deep_body())),
            threading.Thread(target=post, args=("normal", {"messages": MESSAGES})),
        ]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - start < 10
        error_of(answers["deep"], 422, "invalid_request")
        assert answers["normal"].status_code == 200, answers["normal"].text
        batch = httpx.post(
            f"{url}/batch_evaluate/echo",
            json={"items": [{"messages": MESSAGES}, deep_body(), {"messages": MESSAGES}]},
            timeout=20,
        )
        assert [r["status"] for r in batch.json()["results"]] == ["ok", "invalid", "ok"]
        assert httpx.post(f"{url}/evaluate/echo", json={"messages": MESSAGES}).status_code == 200


@pytest.mark.slow
def test_rk_eval_scores_the_other_rows_of_a_file_with_a_deep_row(tmp_path: Path) -> None:
    rows = [{"messages": MESSAGES, "ground_truth": "4"}, deep_body(), {"messages": MESSAGES}]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.jsonl"
    rk = str(Path(sys.executable).parent / "rk")
    command = [rk, "eval", REWARDS, "--function", "echo", "--data", str(data), "--out", str(out)]
    result = subprocess.run(
        [*command, "--quiet", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["line"], r["status"]) for r in lines] == [(1, "ok"), (2, "invalid"), (3, "ok")]
    assert "line 2.x: " in lines[1]["error"]["message"]


def test_openapi_documents_the_depth_limit(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    request = schema["components"]["schemas"]["EvaluateRequest"]
    assert f"at most {MAX_JSON_DEPTH} levels" in request["description"]
    errors = schema["paths"]["/evaluate/{name}"]["post"]["responses"]["422"]
    assert f"past {MAX_JSON_DEPTH} levels" in errors["description"]
