"""The judge's endpoint is operator configuration and may be an internal host or hold a
password: it never reaches a caller (GET /functions, rk functions) nor an error message.
And the retried statuses are exactly the ones the docs name."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reward_kit import ConfigurationError
from reward_kit._errors import FunctionError
from reward_kit.rewards import judge as judge_module
from reward_kit.rewards import llm_judge, llm_judge_reward
from reward_kit.service import ServeSettings, create_app

from .conftest import FakeJudge

SAY = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
INTERNAL = "http://judge-gpu-7.corp.internal:8080/v1"


def test_the_doc_names_the_model_but_not_the_endpoint(tmp_path: Path) -> None:
    judge = llm_judge(base_url=INTERNAL, model="qwen2.5-7b", api_key_env=None, name="judge")
    assert "qwen2.5-7b" in judge.doc
    assert "corp.internal" not in judge.doc + (judge.__doc__ or "")
    rewards = tmp_path / "judge_rewards.py"
    rewards.write_text(
        "from reward_kit.rewards import llm_judge\n"
        f"judge = llm_judge(base_url={INTERNAL!r}, model='qwen2.5-7b', api_key_env=None,\n"
        "                  name='judge')\n"
    )
    settings = ServeSettings(targets=(str(rewards),), workers=1)
    with TestClient(create_app(settings=settings), base_url="http://localhost") as client:
        response = client.get("/functions")
    assert response.status_code == 200, response.text
    (entry,) = [f for f in response.json()["functions"] if f["name"] == "judge"]
    assert "qwen2.5-7b" in entry["doc"]
    assert "corp.internal" not in response.text
    assert "8080" not in response.text


@pytest.mark.parametrize(
    "url",
    [
        "https://user:tok3n-s3cret@judge.example.com/v1",
        "http://tok3n-s3cret@127.0.0.1:8080/v1",
        "https://:tok3n-s3cret@judge.example.com/v1",
    ],
)
def test_a_url_with_userinfo_is_refused_without_echoing_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="base_url: must not hold a user or password") as caught:
        llm_judge(base_url=url, model="m", api_key_env=None)
    assert "tok3n-s3cret" not in str(caught.value)
    monkeypatch.setenv("RK_JUDGE_MODEL", "judge-1")
    monkeypatch.setenv("RK_JUDGE_BASE_URL", url)
    monkeypatch.setenv("RK_JUDGE_API_KEY_ENV", "")
    with pytest.raises(ConfigurationError, match="must not hold a user or password") as refused:
        asyncio.run(llm_judge_reward(SAY))
    assert "tok3n-s3cret" not in str(refused.value)


def test_a_bad_scheme_error_does_not_repeat_the_url() -> None:
    with pytest.raises(ValueError, match="base_url: expected an http") as caught:
        llm_judge(base_url="ftp://user:tok3n-s3cret@host/v1", model="m", api_key_env=None)
    assert "tok3n-s3cret" not in str(caught.value)


def _documented_statuses(text: str) -> set[int]:
    found = re.search(r"408[\d/, and]*504", " ".join(text.split()))
    assert found, text
    return {int(n) for n in re.findall(r"\d{3}", found.group(0))}


def test_the_docs_name_exactly_the_retried_statuses() -> None:
    retried = set(judge_module._RETRY_STATUS)
    assert 501 not in retried
    assert 505 not in retried
    for doc in (judge_module._complete.__doc__, llm_judge_reward.__doc__):
        assert doc is not None
        assert "5xx" not in doc
        assert _documented_statuses(doc) == retried
    rewards_md = (Path(__file__).parents[2] / "docs" / "rewards.md").read_text()
    assert "5xx" not in rewards_md
    assert _documented_statuses(rewards_md.split("Retries are a")[1]) == retried


@pytest.mark.parametrize(("status", "calls"), [(501, 1), (505, 1), (500, 2), (504, 2)])
def test_501_and_505_fail_at_once_while_listed_statuses_retry(
    fake_judge: FakeJudge, status: int, calls: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judge_module, "_MAX_BACKOFF", 0.0)
    fake_judge.reply("nope", status=status)
    fake_judge.reply('{"score": 5}')
    judge = llm_judge(base_url=fake_judge.url, model="m", api_key_env=None, max_attempts=2)
    if calls == 1:
        with pytest.raises(FunctionError, match=f"HTTP {status}"):
            asyncio.run(judge(SAY))
    else:
        assert asyncio.run(judge(SAY)).score == pytest.approx(0.5)
    assert len(fake_judge.requests) == calls
