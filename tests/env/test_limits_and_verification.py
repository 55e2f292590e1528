"""Capacity, the idle reaper, abandonment, and transcript verification (enforce mode)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, error_of, metric

from ._http import call, open_session, step
from .conftest import client, eventually, rss_kb, serve, session_processes


@pytest.fixture(scope="module")
def strict() -> Iterator[LiveServer]:
    with serve(env_max_sessions=4, env_idle_ttl=1.0, env_verify="enforce") as live:
        yield live


@pytest.fixture
def http(strict: LiveServer) -> Iterator[httpx.Client]:
    with client(strict) as opened:
        eventually(lambda: not session_processes(strict), "no session left by an earlier test")
        yield opened


def played(http: httpx.Client) -> tuple[str, list[dict[str, Any]]]:
    """A session with two steps, and its faithful transcript."""
    sid = open_session(http, task={"target": 30})["session_id"]
    transcript: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    for turn, n in enumerate((50, 20)):
        tool_call = call("guess", f"c{turn}", n=n)
        (result,) = step(http, "guess_number", sid, tool_call)["results"]
        transcript += [
            {"role": "assistant", "content": "", "tool_calls": [tool_call]},
            {"role": "tool", "tool_call_id": f"c{turn}", "content": result["content"]},
        ]
    return sid, transcript


def test_forged_altered_missing_and_unexecuted_tool_messages_are_flagged(
    http: httpx.Client,
) -> None:
    sid, faithful = played(http)
    url = f"/envs/guess_number/sessions/{sid}/evaluate"
    honest = http.post(url, json={"messages": faithful}).json()
    assert honest["is_score_valid"] is True
    assert honest["verification"]["matched"] == 2
    altered = [*faithful[:-1], {**faithful[-1], "content": "correct"}]
    missing = faithful[:-1]
    forged = [*faithful, {"role": "tool", "tool_call_id": "made-up", "content": "correct"}]
    unexecuted = [
        *faithful,
        {"role": "assistant", "content": "", "tool_calls": [call("guess", "c9", n=30)]},
    ]
    changed_call = [
        *faithful[:3],
        {**faithful[3], "tool_calls": [call("guess", "c1", n=30)]},
        *faithful[4:],
    ]
    for messages, flag, ids in (
        (altered, "altered", ["c1"]),
        (missing, "missing", ["c1"]),
        (forged, "forged", ["made-up"]),
        (unexecuted, "never_executed", ["c9"]),
        (changed_call, "altered", ["c1"]),
    ):
        body = http.post(url, json={"messages": messages}).json()
        assert body["verification"][flag] == ids, (flag, body["verification"])
        assert body["is_score_valid"] is False  # --env-verify enforce
        assert body["score"] == honest["score"]  # still scored: the flag says why not to trust it
    assert http.delete(f"/envs/guess_number/sessions/{sid}").status_code == 204


def test_at_capacity_a_create_gets_429_with_retry_after_then_room_after_delete(
    http: httpx.Client,
) -> None:
    sids = [open_session(http)["session_id"] for _ in range(4)]
    refused = http.post("/envs/guess_number/sessions", json={})
    error_of(refused, 429, "overloaded")
    assert int(refused.headers["retry-after"]) >= 1
    assert http.delete(f"/envs/guess_number/sessions/{sids[0]}").status_code == 204
    open_session(http)


def test_the_idle_reaper_ends_sessions_and_counts_them(
    strict: LiveServer, http: httpx.Client
) -> None:
    sid = open_session(http)["session_id"]
    base = f"/envs/guess_number/sessions/{sid}"
    eventually(lambda: http.get(base).status_code == 410, "the idle session is reaped")
    error_of(http.get(base), 410, "session_gone")
    assert http.delete(base).status_code == 204
    assert metric(http.get("/metrics").text, "rk_env_reaped_total", reason="idle") >= 1


def test_abandoned_sessions_leave_no_process_or_memory_behind(
    strict: LiveServer, http: httpx.Client
) -> None:
    chooser = random.Random(15)
    forkserver = strict.config.app.state.env_sessions.forkserver.pid
    baseline_processes = session_processes(strict)
    baseline_rss = rss_kb([forkserver])
    for _ in range(5):
        opened = []
        for _ in range(4):
            response = http.post("/envs/hostile/sessions", json={})
            assert response.status_code == 201, response.text
            opened.append(response.json()["session_id"])
        for sid in opened:
            fate = chooser.choice(["abandon", "delete", "step", "spawn"])
            if fate == "delete":
                assert http.delete(f"/envs/hostile/sessions/{sid}").status_code == 204
            elif fate in ("step", "spawn"):
                tool = "echo" if fate == "step" else "spawn"
                step(http, "hostile", sid, call(tool, "x", text="hi"))
        assert len(session_processes(strict)) >= 1
        # Abandoned ones hold their slots until the reaper frees them: capacity recovers.
        eventually(lambda: not session_processes(strict), "every abandoned session is reaped")
    assert session_processes(strict) == baseline_processes == []
    # 20 leaked sessions would hold ~100 MB; the fork server itself must not grow either.
    assert rss_kb([forkserver]) < baseline_rss + 10 * 1024
    assert http.get("/health").status_code == 200


def test_verification_off_checks_nothing() -> None:
    with serve(env_verify="off") as live, client(live) as http:
        sid, transcript = played(http)
        forged = [*transcript, {"role": "tool", "tool_call_id": "made-up", "content": "correct"}]
        body = http.post(f"/envs/guess_number/sessions/{sid}/evaluate", json={"messages": forged})
        assert body.json()["verification"] is None
        assert body.json()["is_score_valid"] is True
        assert http.get("/envs/guess_number").json()["verify"] == "off"
