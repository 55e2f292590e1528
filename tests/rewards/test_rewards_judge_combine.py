"""The LLM judge against a real local OpenAI-compatible server, and combine()."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from reward_kit import ConfigurationError, FunctionError, RewardFunction
from reward_kit.rewards import (
    combine,
    format_reward,
    gsm8k_reward,
    llm_judge,
    llm_judge_reward,
    multiple_choice_reward,
    tag_count_reward,
)
from reward_kit.rewards.judge import parse_judge_score


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": text}]


def judge(fake: Any, **options: Any) -> Any:
    """The operator-configured judge (llm_judge) on ``fake``; request fields in ``options``."""
    config = {k: options.pop(k) for k in ("max_attempts",) if k in options}
    configured = llm_judge(
        base_url=fake.url, model="judge-1", api_key_env="RK_TEST_JUDGE_KEY", **config
    )
    return asyncio.run(configured(say("4"), ground_truth="4", **options))


@pytest.fixture(autouse=True)
def _judge_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_TEST_JUDGE_KEY", "sk-test")


def test_judge_scores_and_sends_rubric_transcript_and_key(fake_judge: Any) -> None:
    fake_judge.reply('{"score": 8, "reason": "correct and brief"}')
    result = judge(fake_judge, rubric="Is the arithmetic right?")
    assert result.score == pytest.approx(0.8)
    assert result.reason == "correct and brief"
    request = fake_judge.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "judge-1"
    system, user = request["body"]["messages"]
    assert "Is the arithmetic right?" in system["content"]
    assert "[assistant] 4" in user["content"]
    assert "[reference answer] 4" in user["content"]


def test_judge_retries_transient_errors_and_honours_retry_after(fake_judge: Any) -> None:
    fake_judge.reply({"error": "busy"}, status=503)
    fake_judge.reply({"error": "slow down"}, status=429, headers={"Retry-After": "0"})
    fake_judge.reply("Score: 3/5", status=200)
    start = time.monotonic()
    result = judge(fake_judge, score_range=(1, 5))
    assert result.score == pytest.approx(0.5)
    assert len(fake_judge.requests) == 3
    assert time.monotonic() - start < 5


def test_judge_fails_loudly_never_a_zero(fake_judge: Any) -> None:
    fake_judge.reply({"error": "bad key"}, status=401)
    with pytest.raises(FunctionError, match="refused"):
        judge(fake_judge)
    for _ in range(2):
        fake_judge.reply({"error": "down"}, status=500)
    with pytest.raises(FunctionError, match="failed 2 time"):
        judge(fake_judge, max_attempts=2)
    fake_judge.reply("I cannot grade this.")
    with pytest.raises(FunctionError, match="no score"):
        judge(fake_judge)
    fake_judge.reply('{"score": 42}')
    with pytest.raises(FunctionError, match="outside"):
        judge(fake_judge)


def test_judge_unreachable_endpoint_and_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    class Nowhere:
        url = "http://127.0.0.1:9/v1"  # discard port: nothing listens

    with pytest.raises(FunctionError, match="ConnectError"):
        judge(Nowhere, max_attempts=1)
    monkeypatch.delenv("RK_TEST_JUDGE_KEY")
    with pytest.raises(ConfigurationError, match="RK_TEST_JUDGE_KEY"):
        judge(Nowhere)
    with pytest.raises(ConfigurationError, match="RK_JUDGE_MODEL"):
        asyncio.run(llm_judge_reward(say("4")))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('```json\n{"score": "7", "reason": "ok"}\n```', 7.0),
        ("Reasoning... Score: 6.5", 6.5),
        ("I'd give it 9/10.", 9.0),
        ("**4**", 4.0),
    ],
)
def test_judge_score_parsing(reply: str, expected: float) -> None:
    assert parse_judge_score(reply, 0, 10)[0] == expected


def test_combine_weights_and_explains() -> None:
    both = combine({format_reward: 0.5, tag_count_reward: 1.5}, name="fmt")
    assert isinstance(both, RewardFunction)
    assert both.name == "fmt"
    result = both(say("<think>a</think><answer>4</answer>"))
    assert result.score == pytest.approx(2.0)
    assert result.metrics["format_reward"].score == 1.0
    assert result.metrics["tag_count_reward.<think>"].score == 1.0
    normalized = combine({format_reward: 0.5, tag_count_reward: 1.5}, normalize=True)
    assert normalized(say("<answer>4</answer>")).score == pytest.approx(1.5 * 0.5 / 2)


def test_combine_passes_ground_truth_and_flags_invalid_parts() -> None:
    mixed = combine({gsm8k_reward: 1.0, multiple_choice_reward: 1.0})
    result = mixed(say("#### 4"), ground_truth="4")
    assert result.metrics["gsm8k_reward"].score == 1.0
    assert result.is_score_valid is False  # "4" is no option letter
    assert "multiple_choice_reward" in (result.reason or "")


def test_combine_with_an_async_part(fake_judge: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_judge.reply('{"score": 10, "reason": "right"}')
    mixed = combine({gsm8k_reward: 0.5, llm_judge_reward: 0.5})
    assert mixed.is_async
    monkeypatch.setenv("RK_JUDGE_MODEL", "judge-1")
    monkeypatch.setenv("RK_JUDGE_BASE_URL", fake_judge.url)
    monkeypatch.setenv("RK_JUDGE_API_KEY_ENV", "RK_TEST_JUDGE_KEY")
    result = asyncio.run(mixed(say("#### 4"), ground_truth="4"))
    assert result.score == pytest.approx(1.0)
    assert set(result.metrics) >= {"gsm8k_reward", "llm_judge_reward", "llm_judge_reward.judge"}


def test_combine_rejects_bad_parts() -> None:
    with pytest.raises(ValueError, match="at least one"):
        combine({})
    with pytest.raises(TypeError, match="number"):
        combine({format_reward: "1"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="finite"):
        combine({format_reward: float("nan")})
