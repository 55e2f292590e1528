"""Scoring by a served evaluator (rk-serve on loopback) through the SDK's batched client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reward_kit import ConfigurationError

from ..conftest import LiveServer
from ._fake_openai import FakeOpenAI
from .conftest import REWARDS, run_on

KEY = "run-remote-key-0123456789abcdef"


@pytest.fixture(scope="module")
def evaluator() -> Iterator[LiveServer]:
    from reward_kit.service import ServeSettings, create_app

    settings = ServeSettings(targets=(REWARDS,), workers=1, api_keys=(KEY,))  # type: ignore[call-arg]
    with LiveServer(create_app(settings=settings)) as live:
        yield live


def test_remote_scoring_matches_local_scoring(
    evaluator: LiveServer,
    fake_openai: FakeOpenAI,
    prompts: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVALUATOR_KEY", KEY)
    local = run_on(
        fake_openai, prompts, tmp_path / "local", samples=3,
        rewards=[f"{REWARDS}:contains_answer", f"{REWARDS}:group_size"],
    )  # fmt: skip
    remote = run_on(
        fake_openai, prompts, tmp_path / "remote", samples=3, rewards=[],
        sets=(
            f'rewards=[{{"url": "{evaluator.url}", "function": "contains_answer", '
            '"api_key_env": "EVALUATOR_KEY"}, '
            f'{{"url": "{evaluator.url}", "function": "group_size", '
            '"api_key_env": "EVALUATOR_KEY"}]',
        ),
    )  # fmt: skip
    key = lambda r: (r["prompt_id"], r["sample_index"])  # noqa: E731
    strip = lambda entry: dict(entry.items())  # noqa: E731
    local_rows = {key(r): {n: strip(e) for n, e in r["rewards"].items()} for r in local}
    remote_rows = {key(r): {n: strip(e) for n, e in r["rewards"].items()} for r in remote}
    assert remote_rows == local_rows  # group_size too: each prompt's 3 samples as one group
    assert remote.summary["rewards"] == local.summary["rewards"]
    info = remote.manifest["rewards"]["group_size"]
    assert info["mode"] == "batch"
    assert info["url"] == evaluator.url


def test_a_wrong_function_or_key_is_a_config_error(
    evaluator: LiveServer, fake_openai: FakeOpenAI, prompts: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("EVALUATOR_KEY", KEY)
    with pytest.raises(ConfigurationError, match="serves no function 'nope'"):
        run_on(
            fake_openai, prompts, tmp_path / "a", rewards=[],
            sets=(f'rewards=[{{"url": "{evaluator.url}", "function": "nope", '
                  '"api_key_env": "EVALUATOR_KEY"}]',),
        )  # fmt: skip
    with pytest.raises(ConfigurationError, match="did not answer"):
        run_on(fake_openai, prompts, tmp_path / "b", rewards=[f"{evaluator.url}#contains_answer"])
    assert fake_openai.count == 0
