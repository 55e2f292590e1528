"""Environment sessions over real HTTP: play, seeds, limits, ownership, hostile tools."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import error_of, metric

from ._http import call, open_session, step
from .conftest import ALICE, client, eventually, serve, session_processes


def test_envs_are_listed_with_openai_tool_schemas_and_limits(alice: httpx.Client) -> None:
    envs = {e["name"]: e for e in alice.get("/envs").json()["envs"]}
    assert set(envs) == {"guess_number", "hostile"}
    guess = alice.get("/envs/guess_number").json()
    assert guess["max_steps"] == 12
    assert guess["step_timeout"] == 5.0
    (schema,) = guess["tools"]
    assert schema["type"] == "function"
    assert schema["function"]["name"] == "guess"
    assert schema["function"]["description"] == "Guess the number."
    n = schema["function"]["parameters"]["properties"]["n"]
    assert n == {"type": "integer", "description": "your guess, 1 to 100."}
    assert schema["function"]["parameters"]["required"] == ["n"]
    error_of(alice.get("/envs/nope"), 404, "unknown_environment")


def test_binary_search_solves_the_game_and_evaluate_scores_each_step(alice: httpx.Client) -> None:
    start = open_session(alice, seed=7)
    sid = start["session_id"]
    assert start["tools"][0]["function"]["name"] == "guess"
    low, high, transcript = 1, 100, [{"role": "user", "content": start["observation"]}]
    for turn in range(12):
        n = (low + high) // 2
        tool_call = call("guess", f"c{turn}", n=n)
        answer = step(alice, "guess_number", sid, tool_call)
        (result,) = answer["results"]
        assert result["status"] == "ok"
        transcript += [
            {"role": "assistant", "content": "", "tool_calls": [tool_call]},
            {"role": "tool", "tool_call_id": f"c{turn}", "content": result["content"]},
        ]
        if result["content"] == "correct":
            break
        low, high = (n + 1, high) if result["content"] == "higher" else (low, n - 1)
    assert answer["done"] is True
    assert answer["status"] == "done"
    state = alice.get(f"/envs/guess_number/sessions/{sid}").json()
    assert state["status"] == "done"
    assert state["step"] == turn + 1
    assert state["reward"] == 1.0
    scored = alice.post(
        f"/envs/guess_number/sessions/{sid}/evaluate", json={"messages": transcript}
    )
    body = scored.json()
    assert body["score"] == 1.0
    assert [s["step_index"] for s in body["step_outputs"]] == list(range(turn + 1))
    assert [s["base_reward"] for s in body["step_outputs"]][-1] == 1.0
    assert body["verification"]["matched"] == turn + 1
    assert body["verification"]["forged"] == body["verification"]["altered"] == []
    error_of(
        alice.post(
            f"/envs/guess_number/sessions/{sid}/step",
            json={"tool_calls": [call("guess", "x", n=1)]},
        ),
        409,
        "session_ended",
    )


def test_a_reward_function_is_given_the_final_state_and_the_ledger(alice: httpx.Client) -> None:
    sid = open_session(alice, task={"target": 40})["session_id"]
    step(alice, "guess_number", sid, call("guess", "a", n=50), call("guess", "b", n=40))
    body = alice.post(
        f"/envs/guess_number/sessions/{sid}/evaluate", json={"function": "solved"}
    ).json()
    assert body["score"] == 1.0, body
    assert body["reason"] == "2 guesses"
    assert body["function"] == "solved"


def test_same_seed_or_group_gives_the_same_start(alice: httpx.Client) -> None:
    one, two = (open_session(alice, group_id="group-1") for _ in range(2))
    other = open_session(alice, group_id="group-2")
    assert one["observation"] == two["observation"] != other["observation"]
    assert one["seed"] == two["seed"]
    assert open_session(alice, seed=5)["observation"] == open_session(alice, seed=5)["observation"]
    for started in (one, two, other):
        sid = started["session_id"]
        step(alice, "guess_number", sid, call("guess", "g", n=50))
    states = [
        alice.get(f"/envs/guess_number/sessions/{s['session_id']}").json() for s in (one, two)
    ]
    assert states[0]["state_hash"] == states[1]["state_hash"]


def test_bad_arguments_are_invalid_results_not_errors(alice: httpx.Client) -> None:
    sid = open_session(alice, seed=1)["session_id"]
    broken = {"id": "j", "type": "function", "function": {"name": "guess", "arguments": "{n:"}}
    answer = step(
        alice, "guess_number", sid,
        call("guess", "a", n="many"), call("guess", "b"), call("nope", "c"), broken,
        call("guess", "d", n=1, extra=2),
    )  # fmt: skip
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["invalid"] * 5
    assert "n:" in answer["results"][0]["content"]
    assert "unknown tool 'nope'" in answer["results"][2]["content"]
    assert answer["done"] is False
    error_of(
        alice.post(f"/envs/guess_number/sessions/{sid}/step", json={"tool_calls": "guess"}),
        422,
        "invalid_request",
    )


def test_max_steps_truncates(alice: httpx.Client) -> None:
    sid = open_session(alice, "hostile")["session_id"]
    for turn in range(3):
        answer = step(alice, "hostile", sid, call("echo", f"e{turn}", text="hi"))
    assert answer["done"] is True
    assert answer["status"] == "truncated"
    error_of(
        alice.post(
            f"/envs/hostile/sessions/{sid}/step", json={"tool_calls": [call("echo", "x", text="")]}
        ),
        409,
        "session_ended",
    )


def test_another_key_cannot_see_or_touch_a_session(alice: httpx.Client, bob: httpx.Client) -> None:
    sid = open_session(alice, seed=3)["session_id"]
    base = f"/envs/guess_number/sessions/{sid}"
    error_of(bob.get(base), 404, "unknown_session")
    error_of(
        bob.post(f"{base}/step", json={"tool_calls": [call("guess", "b", n=1)]}),
        404,
        "unknown_session",
    )
    error_of(bob.post(f"{base}/evaluate", json={}), 404, "unknown_session")
    error_of(bob.delete(base), 404, "unknown_session")
    assert alice.get(base).json()["step"] == 0  # untouched
    assert httpx.get(alice.base_url.join(base)).status_code == 401


def test_delete_is_idempotent_and_ends_the_process(server: Any, alice: httpx.Client) -> None:
    sid = open_session(alice, seed=2)["session_id"]
    base = f"/envs/guess_number/sessions/{sid}"
    assert alice.delete(base).status_code == 204
    assert alice.delete(base).status_code == 204
    error_of(alice.get(base), 410, "session_gone")
    error_of(alice.delete("/envs/guess_number/sessions/never-was"), 404, "unknown_session")


def test_hostile_tools_end_their_session_only(server: Any, alice: httpx.Client) -> None:
    survivor = open_session(alice, seed=9)["session_id"]
    for tool, status in (("hang", "timeout"), ("crash", "error"), ("hog", "error")):
        sid = open_session(alice, "hostile")["session_id"]
        answer = step(alice, "hostile", sid, call(tool, "t"), call("echo", "after", text="x"))
        assert [r["status"] for r in answer["results"]] == [status, "error"], answer
        assert answer["status"] == "failed"
        assert alice.get(f"/envs/hostile/sessions/{sid}").json()["status"] == "failed"
        base = f"/envs/hostile/sessions/{sid}"
        more = {"tool_calls": [call("echo", "z", text="")]}
        error_of(alice.post(f"{base}/step", json=more), 409, "session_ended")
        # Its score() ran in the process that is gone: no score, and never a 0.
        error_of(alice.post(f"{base}/evaluate", json={}), 409, "session_ended")
        assert alice.get("/health").status_code == 200
    # A tool that raises is an error result; the session goes on.
    sid = open_session(alice, "hostile")["session_id"]
    answer = step(alice, "hostile", sid, call("fail", "f"), call("echo", "e", text="still here"))
    assert [r["content"] for r in answer["results"]] == ["RuntimeError: tool broke", "still here"]
    assert (
        step(alice, "guess_number", survivor, call("guess", "s", n=50))["results"][0]["status"]
        == "ok"
    )
    metrics = alice.get("/metrics").text
    assert 'rk_env_kills_total{reason="timeout"}' in metrics


def test_what_a_tool_starts_dies_with_its_session(server: Any, alice: httpx.Client) -> None:
    before = set(session_processes(server))
    sid = open_session(alice, "hostile")["session_id"]
    assert step(alice, "hostile", sid, call("spawn", "s"))["results"][0]["content"] == "spawned"
    assert len(set(session_processes(server)) - before) == 2  # the session and its sleep
    assert alice.delete(f"/envs/hostile/sessions/{sid}").status_code == 204
    eventually(lambda: set(session_processes(server)) <= before, "the detached sleep is killed")


def test_report_mode_flags_a_forged_transcript_but_keeps_the_score_valid(
    alice: httpx.Client,
) -> None:
    sid = open_session(alice, task={"target": 10})["session_id"]
    step(alice, "guess_number", sid, call("guess", "a", n=10))
    forged = [{"role": "tool", "tool_call_id": "a", "content": "lower"}]
    body = alice.post(f"/envs/guess_number/sessions/{sid}/evaluate", json={"messages": forged})
    assert body.json()["verification"]["altered"] == ["a"]
    assert body.json()["is_score_valid"] is True  # --env-verify report (the default)
    assert body.json()["score"] == 1.0


def test_concurrent_sessions_do_not_share_state(server: Any) -> None:
    async def solve(http: httpx.AsyncClient, target: int) -> tuple[int, int]:
        started = await http.post("/envs/guess_number/sessions", json={"task": {"target": target}})
        sid = started.json()["session_id"]
        low, high = 1, 100
        for turn in range(12):
            n = (low + high) // 2
            body = {"tool_calls": [call("guess", f"c{turn}", n=n)]}
            answer = (await http.post(f"/envs/guess_number/sessions/{sid}/step", json=body)).json()
            content = answer["results"][0]["content"]
            if content == "correct":
                break
            low, high = (n + 1, high) if content == "higher" else (low, n - 1)
        assert (await http.delete(f"/envs/guess_number/sessions/{sid}")).status_code == 204
        return target, n

    async def main() -> list[tuple[int, int]]:
        headers = {"Authorization": f"Bearer {ALICE}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            return await asyncio.gather(*(solve(http, t) for t in range(3, 100, 6)))

    for target, found in asyncio.run(main()):
        assert found == target


def test_max_lifetime_ends_even_a_busy_session() -> None:
    with serve(env_max_lifetime=1.0, env_idle_ttl=60.0) as live, client(live) as http:
        sid = open_session(http)["session_id"]
        base = f"/envs/guess_number/sessions/{sid}"
        # The idle TTL is a minute away: only the lifetime can end it this soon.
        eventually(lambda: http.get(base).status_code == 410, "the session outlives its lifetime")
        assert metric(http.get("/metrics").text, "rk_env_reaped_total", reason="lifetime") == 1


def test_a_custom_score_runs_in_the_session_with_its_state(alice: httpx.Client) -> None:
    sid = open_session(alice, "hostile")["session_id"]
    step(alice, "hostile", sid, call("echo", "a", text="one"), call("echo", "b", text="two"))
    step(alice, "hostile", sid, call("echo", "c", text="three"))
    body = alice.post(f"/envs/hostile/sessions/{sid}/evaluate", json={}).json()
    assert body["score"] == 3.0
    assert body["reason"] == "2 steps: ['one', 'two', 'three']"
    assert [s["step_index"] for s in body["step_outputs"]] == [0, 1]
    assert alice.get("/envs/hostile").json()["custom_score"] is True
