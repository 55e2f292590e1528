"""Calls shared by the environment tests."""

from __future__ import annotations

import json
from typing import Any

import httpx


def call(name: str, call_id: str, **arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip


def open_session(http: httpx.Client, env: str = "guess_number", **body: Any) -> dict[str, Any]:
    response = http.post(f"/envs/{env}/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def step(http: httpx.Client, env: str, sid: str, *calls: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"/envs/{env}/sessions/{sid}/step", json={"tool_calls": list(calls)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
