"""EnvClient and AsyncEnvClient against a real server on loopback serving the two example
environments: scripted policies solve them, errors arrive typed, sessions are closed."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reward_kit import AuthenticationError, Overloaded
from reward_kit._errors import SessionGone, UnknownEnvironment, UnknownSession
from reward_kit.sdk import _env_core
from reward_kit.sdk._core import Failure
from reward_kit.sdk.env import AsyncEnvClient, AsyncEnvSession, EnvClient, EnvSession

from ..conftest import ROOT, LiveServer, rk_serve
from .conftest import KEY, REWARDS, make_server

GUESS = str(ROOT / "examples" / "environments" / "guess_number.py")
DESK = str(ROOT / "examples" / "environments" / "support_desk.py")
ENV_REWARDS = str(Path(__file__).with_name("env_rewards.py"))
OTHER_KEY = "sdk-test-other-key-fedcba9876543210"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with make_server(
        targets=(REWARDS, ENV_REWARDS, GUESS, DESK), api_keys=(KEY, OTHER_KEY)
    ) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[EnvClient]:
    with EnvClient(server.url, auth=KEY, max_retries=0) as client:
        yield client


def play_guess_number(session: EnvSession) -> int:
    """Binary search: the scripted policy that always wins within 7 guesses."""
    low, high, guesses = 1, 100, 0
    while not session.done:
        middle = (low + high) // 2
        result = session.step([("guess", {"n": middle})]).results[0]
        guesses += 1
        assert result.status == "ok", result
        if result.content == "higher":
            low = middle + 1
        elif result.content == "lower":
            high = middle - 1
        else:
            assert result.content == "correct"
            assert result.done
    return guesses


async def play_support_desk(session: AsyncEnvSession) -> str:
    """Read the complaint, look the customer and their orders up, refund the one order."""
    match = re.search(r"Customer (.+?) writes: 'The (\w+) I ordered", session.observation)
    assert match, session.observation
    name, product = match.groups()
    found = (await session.step([("find_customer", {"name": name})])).results[0]
    customer_id = json.loads(found.content)["customer_id"]
    listed = (await session.step([("list_orders", {"customer_id": customer_id})])).results[0]
    (order,) = [
        o
        for o in json.loads(listed.content)
        if o["product"] == product and o["status"] == "delivered"
    ]
    refund = await session.step([("refund", {"order_id": order["order_id"]})])
    assert refund.done
    assert refund.results[0].reward == 1.0
    return str(order["order_id"])


def test_lists_and_describes_the_served_environments(client: EnvClient) -> None:
    names = {env["name"] for env in client.list_envs()}
    assert {"guess_number", "support_desk"} <= names
    described = client.describe("support_desk")
    tools = {t["function"]["name"] for t in described["tools"]}
    assert tools == {"find_customer", "list_orders", "refund"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_binary_search_solves_guess_number(client: EnvClient, seed: int) -> None:
    with client.session("guess_number", seed=seed) as session:
        assert [t["function"]["name"] for t in session.tools] == ["guess"]
        guesses = play_guess_number(session)
        assert guesses <= 7
        result = session.evaluate()
        assert result.step_outputs is not None
        assert len(result.step_outputs) == guesses
        assert result.score == pytest.approx(1.0 - 0.05 * (guesses - 1))
        assert session.state()["step"] == guesses
    assert session.closed


def test_refunding_the_wrong_order_loses_and_ends_the_episode(server: LiveServer) -> None:
    async def main() -> tuple[str, float, bool]:
        async with AsyncEnvClient(server.url, auth=KEY) as client:
            async with await client.session("support_desk", seed=5) as session:
                right = await play_support_desk(session)
            # The same shop again; a policy that guesses ids refunds someone else's order.
            async with await client.session("support_desk", seed=5) as session:
                wrong = "O1001" if right != "O1001" else "O1002"
                step = await session.step([("refund", {"order_id": wrong})])
                return wrong, (await session.evaluate()).score, step.done

    _wrong, score, done = asyncio.run(main())
    assert (score, done) == (-1.0, True)


def test_async_client_solves_support_desk(server: LiveServer) -> None:
    async def main() -> list[float]:
        async with AsyncEnvClient(server.url, auth=KEY) as client:
            scores = []
            for seed in (11, 12):
                async with await client.session("support_desk", seed=seed) as session:
                    await play_support_desk(session)
                    scores.append((await session.evaluate()).score)
                assert session.closed
            return scores

    assert asyncio.run(main()) == [1.0, 1.0]


def test_a_served_reward_function_scores_what_the_session_did(client: EnvClient) -> None:
    with client.session("guess_number", seed=9) as session:
        guesses = play_guess_number(session)
        scored = session.evaluate(function="solved_within", ground_truth=7, label="bsearch")
        assert scored.function == "solved_within"
        assert scored.score == 1.0
        assert scored.reason == f"bsearch: {guesses} guesses"
        assert scored.step_outputs is not None
        assert len(scored.step_outputs) == guesses
        assert session.evaluate(function="solved_within", ground_truth=guesses - 1).score == 0.0
    with pytest.raises(TypeError, match="reward function"):
        session.evaluate(ground_truth=3)


def test_the_same_seed_or_group_gives_the_same_start(client: EnvClient) -> None:
    def first(**start: Any) -> str:
        with client.session("support_desk", **start) as session:
            return session.observation

    assert first(seed=4) == first(seed=4)
    assert first(group_id="g-1") == first(group_id="g-1")
    assert len({first(seed=s) for s in range(6)}) > 1


def test_bad_arguments_are_an_invalid_result_not_an_exception(client: EnvClient) -> None:
    with client.session("guess_number", seed=1) as session:
        step = session.step([("guess", {"n": "fifty"}), {"function": {"name": "nope"}}])
        assert [r.status for r in step.results] == ["invalid", "invalid"]
        assert [r.tool_call_id for r in step.results] == ["call_1", "call_2"]


def test_errors_are_typed_and_close_is_idempotent(server: LiveServer, client: EnvClient) -> None:
    with pytest.raises(UnknownEnvironment):
        client.session("no_such_env")
    with pytest.raises(AuthenticationError), EnvClient(server.url, auth=False) as anonymous:
        anonymous.list_envs()

    session = client.session("guess_number", seed=1)
    with EnvClient(server.url, auth=OTHER_KEY, max_retries=0) as other:
        stranger = EnvSession(client=other, info=session.info)
        for touch in (stranger.state, lambda: stranger.step([("guess", {"n": 1})])):
            with pytest.raises(UnknownSession):  # another key's session does not exist for it
                touch()
    session.close()
    session.close()
    with pytest.raises(SessionGone):  # closed: its process is gone
        session.state()


def test_one_url_only() -> None:
    with pytest.raises(ValueError, match="one server"):
        EnvClient("http://127.0.0.1:1,http://127.0.0.1:2", auth=False)


def test_tool_calls_are_normalised_to_the_openai_format() -> None:
    import itertools

    calls = _env_core.tool_calls_of(
        [
            ("guess", {"n": 3}),
            {"id": "x", "type": "function", "function": {"name": "g", "arguments": '{"n":1}'}},
        ],
        itertools.count(1),
    )
    assert calls == [
        {"id": "call_1", "type": "function", "function": {"name": "guess", "arguments": '{"n":3}'}},
        {"id": "x", "type": "function", "function": {"name": "g", "arguments": '{"n":1}'}},
    ]
    with pytest.raises(TypeError, match="tool_calls"):
        _env_core.tool_calls_of(["guess"], itertools.count(1))
    # A generated id never repeats one the session already used (the server refuses repeats).
    used = {"call_1"}
    (generated,) = _env_core.tool_calls_of([("guess", {})], itertools.count(1), used)
    assert generated["id"] == "call_2"
    assert used == {"call_1", "call_2"}


@pytest.mark.parametrize(
    ("method", "path", "error", "status", "retry"),
    [
        # A step or a create that may have reached the server is never repeated...
        ("POST", "/envs/e/sessions/s/step", httpx.ReadTimeout("t"), None, False),
        ("POST", "/envs/e/sessions", httpx.RemoteProtocolError("r"), None, False),
        ("POST", "/envs/e/sessions/s/step", None, 503, False),
        # ...unless it certainly did not: refused connection, or 429 at capacity.
        ("POST", "/envs/e/sessions/s/step", httpx.ConnectError("c"), None, True),
        ("POST", "/envs/e/sessions", None, 429, True),
        # Reads, evaluate and DELETE have nothing to double.
        ("POST", "/envs/e/sessions/s/evaluate", httpx.ReadTimeout("t"), None, True),
        ("GET", "/envs/e/sessions/s", httpx.ReadTimeout("t"), None, True),
        ("DELETE", "/envs/e/sessions/s", None, 503, True),
    ],
)
def test_only_what_cannot_run_twice_is_retried(
    method: str, path: str, error: Exception | None, status: int | None, retry: bool
) -> None:
    from reward_kit.sdk import _responses

    if error is not None:
        failure = _responses.transport_error(error, "http://h")  # type: ignore[arg-type]
    else:
        failure = _responses.response_error(httpx.Response(status or 500, json={}))
    assert failure.retryable
    request = _env_core.Request(method, path)
    assert _env_core.safe_to_repeat(request, failure, error).retryable is retry
    assert isinstance(_env_core.safe_to_repeat(request, failure, error), Failure)


def test_capacity_is_a_typed_429_and_a_closed_slot_is_reusable() -> None:
    with (
        make_server(targets=(GUESS,), env_max_sessions=1) as live,
        EnvClient(live.url, auth=KEY, max_retries=0) as client,
    ):
        first = client.session("guess_number", seed=1)
        with pytest.raises(Overloaded) as full:
            client.session("guess_number", seed=2)
        assert full.value.status == 429
        assert full.value.retry_after is not None
        first.close()
        with client.session("guess_number", seed=2) as second:
            assert second.step([("guess", {"n": 50})]).step == 1


def test_rk_serve_serves_the_example_files_alone() -> None:
    # The documented command: `rk-serve examples/environments/*.py`, no reward function at all.
    with rk_serve(GUESS, DESK, env={"RK_API_KEYS": KEY}) as url, EnvClient(url, auth=KEY) as client:
        assert {e["name"] for e in client.list_envs()} == {"guess_number", "support_desk"}
        with client.session("guess_number", seed=21) as session:
            assert play_guess_number(session) <= 7
