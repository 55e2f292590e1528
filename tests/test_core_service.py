"""The service side of core behaviours: /functions fields, and wrong return shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reward_kit.service import ServeSettings, create_app

REWARDS = str(Path(__file__).parent / "fixtures" / "core_rewards.py")
MESSAGES = [{"role": "assistant", "content": "4"}]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = ServeSettings(targets=(REWARDS,), workers=1, timeout=12)
    with TestClient(
        create_app(settings=settings), base_url="http://localhost", raise_server_exceptions=False
    ) as client:
        yield client


def test_functions_lists_docstring_and_the_timeout_that_applies(client: TestClient) -> None:
    listed = {f["name"]: f for f in client.get("/functions").json()["functions"]}
    assert listed["invalid_score"]["docstring"].startswith("Cannot judge")
    assert listed["invalid_score"]["doc"] == listed["invalid_score"]["docstring"]
    assert listed["invalid_score"]["timeout"] == 7  # its own
    assert listed["wrong_shape"]["timeout"] == 12  # the server default, not null
    assert listed["length"]["docstring"] == ""
    assert {"name", "docstring", "mode", "timeout", "requirements"} <= set(listed["length"])


def test_a_wrong_shaped_dict_is_a_function_error_never_a_score(client: TestClient) -> None:
    body = {"items": [{"messages": MESSAGES}, {"messages": MESSAGES, "function": "length"}]}
    first, second = client.post("/batch_evaluate/wrong_shape", json=body).json()["results"]
    assert first["status"] == "error"
    assert first["result"] is None
    assert (second["status"], second["result"]["score"]) == ("ok", 1.0)  # the others still score
    assert first["error"]["code"] == "function_error"
    message = first["error"]["message"]
    assert message.startswith("TypeError: reward function 'wrong_shape' returned a dict")
    assert "score: Field required" in message
    assert "expected an EvaluateResult" in message
    single = client.post("/evaluate/wrong_shape", json={"messages": MESSAGES})
    assert single.status_code == 500
    assert single.json()["error"]["code"] == "function_error"
    assert "score: Field required" in single.json()["error"]["message"]
