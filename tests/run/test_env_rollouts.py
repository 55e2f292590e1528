"""``rk run --env``: multi-turn rollouts against a real rk-serve environment on loopback, driven
by a scripted model on the fake OpenAI endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward_kit._errors import ConfigurationError, SessionGone
from reward_kit.sdk.env import EnvClient, EnvSession, SessionInfo

from ..conftest import ROOT, LiveServer
from ._fake_openai import Action, FakeOpenAI, reply, tool_call
from .conftest import REWARDS, read_lines, run_on, write_rows

GUESS = str(ROOT / "examples" / "environments" / "guess_number.py")
KEY = "run-env-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def env_server() -> Iterator[LiveServer]:
    from reward_kit.service import ServeSettings, create_app

    settings = ServeSettings(targets=(GUESS,), api_keys=(KEY,), workers=1)  # type: ignore[call-arg]
    with LiveServer(create_app(settings=settings)) as live:
        yield live


def _info(session_id: str) -> SessionInfo:
    return SessionInfo(env="guess_number", session_id=session_id, observation="", tools=())


def binary_search(body: dict[str, Any]) -> Action:
    """The model: reads its own guesses and the hints back from the transcript."""
    low, high, guess = 1, 100, None
    for message in body["messages"]:
        if message.get("tool_calls"):
            guess = json.loads(message["tool_calls"][0]["function"]["arguments"])["n"]
        elif message["role"] == "tool" and guess is not None:
            low, high = (guess + 1, high) if message["content"] == "higher" else (low, guess - 1)
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    return tool_call("guess", {"n": (low + high) // 2}, call_id=f"call_{turn}")


def test_rollouts_play_the_environment_and_record_trajectories(
    env_server: LiveServer, fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_TEST_ENV_KEY", KEY)
    fake_openai.responder = binary_search
    rows = [{"id": f"g{i}", "prompt": "Find the number."} for i in range(2)]
    data = write_rows(tmp_path / "games.jsonl", rows)
    env_sets = (
        "env.name=guess_number",
        f"env.url={env_server.url}",
        "env.api_key_env=RK_TEST_ENV_KEY",
    )
    result = run_on(
        fake_openai,
        data,
        tmp_path / "run",
        samples=2,
        rewards=[f"{REWARDS}:contains_answer"],
        sets=env_sets,
    )
    lines = read_lines(tmp_path / "run" / "results.jsonl")
    assert len(lines) == 4
    for line in lines:
        env = line["env"]
        guesses = env["steps"]
        assert 1 <= guesses <= 7
        assert env["done"] is True
        assert env["status"] == "done"
        # The session ended on the winning guess: its result is the last message.
        assert env["turns"][-1]["role"] == "tool"
        assert env["turns"][-1]["content"] == "correct"
        assert [m["role"] for m in env["turns"]] == ["assistant", "tool"] * guesses
        assert "integer from 1 to 100" in line["messages"][-1]["content"]  # the observation
        entry = line["rewards"]["guess_number"]
        assert entry["status"] == "ok"
        assert entry["score"] == pytest.approx(1.0 - 0.05 * (guesses - 1))
        assert len(entry["step_outputs"]) == guesses
        assert line["rewards"]["contains_answer"]["status"] == "ok"  # scored the transcript
    assert fake_openai.count == sum(line["env"]["steps"] for line in lines)  # a request a turn
    with EnvClient(env_server.url, auth=KEY) as client:  # every session was closed
        for line in lines:
            with pytest.raises(SessionGone):
                EnvSession(client=client, info=_info(line["env"]["session_id"])).state()
    assert result.summary["rewards"]["guess_number"]["count"] == 4
    assert list(result.summary["rewards"]) == ["guess_number", "contains_answer"]


def test_max_steps_truncates_a_rollout_that_never_wins(
    env_server: LiveServer, fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_TEST_ENV_KEY", KEY)
    fake_openai.responder = lambda body: tool_call("guess", {"n": 0})  # out of range: never right
    data = write_rows(tmp_path / "games.jsonl", [{"id": "g", "prompt": "Find the number."}])
    env_sets = (
        "env.name=guess_number",
        f"env.url={env_server.url}",
        "env.api_key_env=RK_TEST_ENV_KEY",
    )
    result = run_on(fake_openai, data, tmp_path / "run", rewards=[], sets=env_sets)
    (line,) = read_lines(tmp_path / "run" / "results.jsonl")
    assert line["env"]["steps"] == 10  # GuessNumber.max_steps
    assert line["env"]["status"] == "truncated"
    assert line["rewards"]["guess_number"]["score"] == pytest.approx(-0.5)
    # The model sent "call_0" every turn: the ids were made unique, so the transcript verifies.
    verification = line["rewards"]["guess_number"]["verification"]
    assert verification["matched"] == 10
    assert verification["altered"] == verification["forged"] == []
    assert fake_openai.count == 10
    assert result.summary["rewards"]["guess_number"]["mean"] == pytest.approx(-0.5)


def test_an_unknown_environment_is_a_config_error(
    env_server: LiveServer, fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_TEST_ENV_KEY", KEY)
    fake_openai.responder = lambda body: reply("hi")
    data = write_rows(tmp_path / "games.jsonl", [{"id": "g", "prompt": "play"}])
    env_sets = ("env.name=chess", f"env.url={env_server.url}", "env.api_key_env=RK_TEST_ENV_KEY")
    with pytest.raises(ConfigurationError, match=r"env\.name"):
        run_on(fake_openai, data, tmp_path / "run", rewards=[], sets=env_sets)
    assert fake_openai.count == 0


def test_the_cli_flags_set_the_env_keys(
    env_server: LiveServer, fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from reward_kit.cli import cli

    monkeypatch.setenv("RK_TEST_ENV_KEY", KEY)
    fake_openai.responder = binary_search
    data = write_rows(tmp_path / "games.jsonl", [{"id": "g", "prompt": "Find the number."}])
    args = ["run", "--data", data, "--model", "m", "--base-url", fake_openai.url]
    args += ["--env", "guess_number", "--env-url", env_server.url, "--out", str(tmp_path / "r")]
    args += ["--set", "env.api_key_env=RK_TEST_ENV_KEY", "--set", "scoring.workers=0"]
    done = CliRunner().invoke(cli, [*args, "--quiet", "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["rewards"]["guess_number"]["mean"] > 0
    (line,) = read_lines(tmp_path / "r" / "results.jsonl")
    assert line["env"]["status"] == "done"
