"""``rk run --env`` when a session cannot be opened: that sample fails (never a 0) and the run
goes on, unless the error would be the same for every sample (auth, an unknown environment)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward_kit._errors import PermissionDenied, UnknownEnvironment
from reward_kit.run._dataset import Prompt
from reward_kit.run._rollout import EnvRollouts
from reward_kit.run._routing import Sample
from reward_kit.sdk.env import AsyncEnvClient

from ..conftest import ROOT, LiveServer
from ._fake_openai import FakeOpenAI, tool_call
from .conftest import read_lines, run_on, write_rows

GAMES = str(ROOT / "tests" / "fixtures" / "env_games.py")
KEY = "run-env-open-key-0123456789abcdef"


@pytest.fixture(scope="module")
def games() -> Iterator[LiveServer]:
    from reward_kit.service import ServeSettings, create_app

    settings = ServeSettings(targets=(GAMES,), api_keys=(KEY,), workers=0)  # type: ignore[call-arg]
    with LiveServer(create_app(settings=settings)) as live:
        yield live


def test_a_session_that_cannot_open_fails_only_its_sample(
    games: LiveServer, fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_TEST_ENV_KEY", KEY)
    fake_openai.responder = lambda body: tool_call("guess", {"n": 50})
    rows = [
        {"id": "good", "prompt": "Find it.", "task": {"target": 50}},
        {"id": "bad", "prompt": "Find it.", "task": "not a mapping"},  # reset() raises
    ]
    data = write_rows(tmp_path / "games.jsonl", rows)
    sets = ("env.name=guess_number", f"env.url={games.url}", "env.api_key_env=RK_TEST_ENV_KEY")
    result = run_on(fake_openai, data, tmp_path / "run", rewards=[], sets=sets)
    lines = {line["prompt_id"]: line for line in read_lines(tmp_path / "run" / "results.jsonl")}
    assert lines["good"]["env"]["status"] == "done"
    assert lines["good"]["rewards"]["guess_number"]["score"] == pytest.approx(1.0)
    bad = lines["bad"]
    assert bad["generation"]["status"] == "env_session"
    assert bad["env"]["status"] == "not_opened"
    assert bad["env"]["session_id"] is None
    assert "reset failed" in bad["env"]["error"]
    assert bad["generation"]["error"] == bad["env"]["error"]
    entry = bad["rewards"]["guess_number"]
    assert entry["status"] == "skipped"
    assert entry["score"] is None
    assert entry["is_score_valid"] is False
    assert fake_openai.count == 1  # the bad sample never asked the model
    assert result.summary["generation"]["statuses"] == {"ok": 1, "env_session": 1}
    assert result.summary["rewards"]["guess_number"]["count"] == 1


def _sample() -> Sample:
    return Sample(Prompt("p", [{"role": "user", "content": "go"}]), 0, 7)


@pytest.mark.parametrize(
    ("key", "env", "error"),
    [("wrong-key-0123456789abcdef0123", "guess_number", PermissionDenied),
     (KEY, "chess", UnknownEnvironment)],
)  # fmt: skip
def test_auth_errors_and_an_unknown_environment_stop_the_run(
    games: LiveServer, key: str, env: str, error: type[Exception]
) -> None:
    async def roll_out() -> None:
        client = AsyncEnvClient(games.url, auth=key)
        rollouts = EnvRollouts(client, env, max_turns=4, described={})
        no_model: Any = None  # never reached: the session is opened before the first request
        try:
            await rollouts.rollout(_sample(), no_model)
        finally:
            await client.aclose()

    # Raised out of the worker, the error stops the run (_pipeline._until_first_error).
    with pytest.raises(error):
        asyncio.run(roll_out())
