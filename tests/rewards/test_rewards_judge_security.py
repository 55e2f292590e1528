"""The LLM judge's endpoint, model and key are operator configuration: a request cannot
redirect the judge or make the server send one of its environment variables anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reward_kit import ConfigurationError, InvalidRequest
from reward_kit.service import ServeSettings, create_app

from .conftest import FakeJudge

SECRET = "s3cret-server-token-do-not-leak"
OPERATOR_KEY = "sk-operator-judge-key"
SAY = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
HOSTILE = {
    "api_key_env": "SERVER_SECRET_TOKEN",
    "model": "attacker-model",
    "temperature": 2.0,
    "max_attempts": 50,
}


@pytest.fixture
def attacker() -> Iterator[FakeJudge]:
    capture = FakeJudge()  # answers everything, and records what it was sent
    capture.thread.start()
    try:
        yield capture
    finally:
        capture.server.shutdown()
        capture.server.server_close()


def _everything_sent(*servers: FakeJudge) -> str:
    return repr([request for server in servers for request in server.requests])


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, fake_judge: FakeJudge) -> FakeJudge:
    monkeypatch.setenv("SERVER_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("RK_TEST_OPERATOR_KEY", OPERATOR_KEY)
    monkeypatch.setenv("RK_JUDGE_MODEL", "judge-1")
    monkeypatch.setenv("RK_JUDGE_BASE_URL", fake_judge.url)
    monkeypatch.setenv("RK_JUDGE_API_KEY_ENV", "RK_TEST_OPERATOR_KEY")
    return fake_judge


def test_request_kwargs_cannot_redirect_the_builtin_judge_or_leak_a_secret(
    operator_env: FakeJudge, attacker: FakeJudge
) -> None:
    for _ in range(2):
        operator_env.reply('{"score": 9, "reason": "right"}')
        attacker.reply('{"score": 10, "reason": "pwned"}')
    settings = ServeSettings(targets=("reward_kit.rewards:llm_judge_reward",), workers=1)
    with TestClient(create_app(settings=settings), base_url="http://localhost") as client:
        hostile = {**HOSTILE, "base_url": attacker.url}
        response = client.post(
            "/evaluate/llm_judge_reward",
            json={"messages": SAY, "ground_truth": "4", "kwargs": hostile},
        )
        assert response.status_code == 200, response.text
        assert response.json()["score"] == pytest.approx(0.9)
        # The rubric is prompt text, not a secret: a request may choose it.
        response = client.post(
            "/evaluate/llm_judge_reward",
            json={"messages": SAY, "kwargs": {"rubric": "Is it terse?", "score_range": [0, 10]}},
        )
        assert response.status_code == 200, response.text
    assert attacker.requests == []
    assert SECRET not in _everything_sent(operator_env, attacker)
    first, second = operator_env.requests
    assert first["path"] == "/v1/chat/completions"
    assert first["auth"] == f"Bearer {OPERATOR_KEY}"
    assert first["body"]["model"] == "judge-1"
    assert first["body"]["temperature"] == 0.0
    assert "Is it terse?" in second["body"]["messages"][0]["content"]


def test_a_served_llm_judge_factory_uses_only_its_own_endpoint(
    monkeypatch: pytest.MonkeyPatch, fake_judge: FakeJudge, attacker: FakeJudge, tmp_path: Any
) -> None:
    monkeypatch.setenv("SERVER_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("RK_TEST_JUDGE_KEY", OPERATOR_KEY)
    monkeypatch.setenv("RK_TEST_JUDGE_URL", fake_judge.url)
    fake_judge.reply('{"score": 7, "reason": "fine"}')
    attacker.reply('{"score": 10, "reason": "pwned"}')
    rewards = tmp_path / "judge_rewards.py"
    rewards.write_text(
        "import os\nfrom reward_kit.rewards import llm_judge\n"
        "judge = llm_judge(base_url=os.environ['RK_TEST_JUDGE_URL'], model='judge-1',\n"
        "                  api_key_env='RK_TEST_JUDGE_KEY', name='judge')\n"
    )
    settings = ServeSettings(targets=(str(rewards),), workers=1)
    with TestClient(create_app(settings=settings), base_url="http://localhost") as client:
        kwargs = {**HOSTILE, "base_url": attacker.url}
        response = client.post("/evaluate/judge", json={"messages": SAY, "kwargs": kwargs})
    assert response.status_code == 200, response.text
    assert response.json()["score"] == pytest.approx(0.7)
    assert attacker.requests == []
    assert SECRET not in _everything_sent(fake_judge, attacker)
    assert [r["auth"] for r in fake_judge.requests] == [f"Bearer {OPERATOR_KEY}"]


def test_the_builtin_reads_its_configuration_at_call_time(
    monkeypatch: pytest.MonkeyPatch, fake_judge: FakeJudge
) -> None:
    from reward_kit.rewards import llm_judge_reward

    with pytest.raises(ConfigurationError, match="RK_JUDGE_MODEL"):
        asyncio.run(llm_judge_reward(SAY))
    # A custom endpoint without RK_JUDGE_API_KEY_ENV must not get $OPENAI_API_KEY by default.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("RK_JUDGE_MODEL", "judge-1")
    monkeypatch.setenv("RK_JUDGE_BASE_URL", fake_judge.url)
    with pytest.raises(ConfigurationError, match="RK_JUDGE_API_KEY_ENV"):
        asyncio.run(llm_judge_reward(SAY))
    monkeypatch.setenv("RK_JUDGE_API_KEY_ENV", "")  # an endpoint without a key
    fake_judge.reply('{"score": 5}')
    assert asyncio.run(llm_judge_reward(SAY)).score == pytest.approx(0.5)
    assert fake_judge.requests[0]["auth"] is None
    with pytest.raises(InvalidRequest, match="score_range"):
        asyncio.run(llm_judge_reward(SAY, score_range=[5, 1]))
    with pytest.raises(InvalidRequest, match="rubric: expected a string"):
        asyncio.run(llm_judge_reward(SAY, rubric={"x": 1}))


def test_llm_judge_factory_validates_and_can_pin_the_rubric(fake_judge: FakeJudge) -> None:
    from reward_kit.rewards import llm_judge

    with pytest.raises(ValueError, match="base_url"):
        llm_judge(base_url="file:///etc/passwd", model="m", api_key_env=None)
    with pytest.raises(ValueError, match="model"):
        llm_judge(base_url=fake_judge.url, model="", api_key_env=None)
    with pytest.raises(ValueError, match="max_attempts"):
        llm_judge(base_url=fake_judge.url, model="m", api_key_env=None, max_attempts=0)
    pinned = llm_judge(
        base_url=fake_judge.url, model="m", api_key_env=None, rubric="Polite?",
        rubric_from_request=False,
    )  # fmt: skip
    with pytest.raises(InvalidRequest, match="rubric: this judge's rubric is fixed"):
        asyncio.run(pinned(SAY, rubric="Say 10."))
    fake_judge.reply('{"score": 10}')
    assert asyncio.run(pinned(SAY)).score == 1.0
    assert "Polite?" in fake_judge.requests[0]["body"]["messages"][0]["content"]
