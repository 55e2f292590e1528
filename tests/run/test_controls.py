"""Throughput and failure controls against the fake endpoint: retries, Retry-After, resets,
hangs, malformed answers, n, auth, context length, rate limits. Outcomes and request counts,
never wall time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reward_kit import GenerationError
from reward_kit.run import LimitsConfig, ModelConfig

from ._fake_openai import (
    FakeOpenAI,
    context_length,
    empty,
    hang,
    malformed,
    reset,
    status,
)
from .conftest import read_lines, run_on


def attempts(out: Path) -> list[int]:
    return sorted(r["generation"]["attempts"] for r in read_lines(out / "results.jsonl"))


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        (status(429, retry_after=0), ()),
        (status(503), ()),
        (status(500, "not json at all"), ()),
        (reset(), ()),
        (malformed(), ()),
        (hang(), ("limits.timeout=0.5",)),
    ],
    ids=["429-retry-after", "503", "500-text", "reset", "malformed", "hang"],
)
def test_transient_failures_are_retried(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path, fault: Any, extra: tuple[str, ...]
) -> None:
    fake_openai.script(fault)
    result = run_on(fake_openai, prompts, tmp_path / "run", sets=extra)
    assert fake_openai.count == 5  # four samples, one of them twice
    assert attempts(tmp_path / "run") == [1, 1, 1, 2]
    assert result.summary["generation"]["errors"] == 0
    assert result.summary["generation"]["requests"] == 5


def test_a_burst_of_server_errors(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    fake_openai.script(*[status(502)] * 5)
    result = run_on(fake_openai, prompts, tmp_path / "run", sets=("limits.max_concurrency=1",))
    assert fake_openai.count == 9
    assert sum(attempts(tmp_path / "run")) == 9
    assert result.summary["generation"]["errors"] == 0


def test_retries_run_out(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    fake_openai.script(*[status(503)] * 3)
    result = run_on(
        fake_openai, prompts, tmp_path / "run",
        sets=("limits.max_attempts=3", "limits.max_concurrency=1"),
    )  # fmt: skip
    rows = read_lines(tmp_path / "run" / "results.jsonl")
    failed = [r for r in rows if r["generation"]["status"] != "ok"]
    assert len(failed) == 1
    assert failed[0]["generation"]["status"] == "server"
    assert failed[0]["generation"]["attempts"] == 3
    assert fake_openai.count == 6
    assert failed[0]["rewards"]["contains_answer"]["status"] == "skipped"
    assert result.summary["rewards"]["contains_answer"]["statuses"] == {"ok": 3, "skipped": 1}


def test_context_length_is_not_retried_and_not_scored(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    fake_openai.script(context_length())
    result = run_on(fake_openai, prompts, tmp_path / "run")
    assert fake_openai.count == 4
    assert result.summary["generation"]["statuses"] == {"context_length": 1, "ok": 3}


def test_an_auth_error_stops_the_run_at_once(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.api_key = "the-right-key"
    monkeypatch.setenv("FAKE_KEY", "a-wrong-key")
    with pytest.raises(GenerationError, match="refused the credentials") as caught:
        run_on(
            fake_openai, prompts, tmp_path / "run", samples=8, api_key_env="FAKE_KEY",
            sets=("limits.max_concurrency=1",),
        )  # fmt: skip
    assert caught.value.kind == "auth"
    assert fake_openai.count == 1  # not 32 requests, and no retry
    assert "the-right-key" not in str(caught.value)
    monkeypatch.setenv("FAKE_KEY", "the-right-key")
    result = run_on(
        fake_openai, prompts, tmp_path / "run2", api_key_env="FAKE_KEY",
    )  # fmt: skip
    assert result.summary["generation"]["errors"] == 0
    assert fake_openai.headers[-1]["authorization"] == "Bearer the-right-key"
    assert "the-right-key" not in (tmp_path / "run2" / "manifest.json").read_text()


def test_a_missing_key_variable_is_a_config_error(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    from reward_kit import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"model.api_key_env.*NOT_SET_ANYWHERE"):
        run_on(fake_openai, prompts, tmp_path / "run", api_key_env="NOT_SET_ANYWHERE")
    assert fake_openai.count == 0


def test_a_wrong_path_stops_the_run(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    from reward_kit.run import run

    with pytest.raises(GenerationError, match=r"model\.base_url") as caught:
        run(
            data=prompts, base_url=fake_openai.url.removesuffix("/v1"), model="m",
            rewards=["tests/run/rewards.py:contains_answer"], out=str(tmp_path / "run"),
            set=["scoring.workers=0"],
        )  # fmt: skip
    assert caught.value.kind == "not_found"


def test_empty_replies_are_scored_but_not_cached(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    fake_openai.script(empty())
    result = run_on(fake_openai, prompts, tmp_path / "one", sets=("limits.max_concurrency=1",))
    rows = read_lines(tmp_path / "one" / "results.jsonl")
    blank = [r for r in rows if r["response"] == ""]
    assert len(blank) == 1
    assert blank[0]["rewards"]["contains_answer"]["status"] == "ok"
    assert result.summary["generation"]["errors"] == 0
    run_on(fake_openai, prompts, tmp_path / "two")
    assert fake_openai.count == 5  # the empty one is asked again, the others come from the cache


def test_n_in_one_request_and_servers_that_ignore_it(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    run_on(fake_openai, prompts, tmp_path / "n", samples=3, sets=("model.use_n=true",))
    assert fake_openai.count == 4
    assert {b["n"] for b in fake_openai.requests} == {3}
    rows = read_lines(tmp_path / "n" / "results.jsonl")
    assert len(rows) == 12
    assert len({r["response"] for r in rows}) == 12
    fake_openai.reset_log()
    fake_openai.honour_n = False  # llama.cpp: one choice whatever n says
    run_on(
        fake_openai, prompts, tmp_path / "ignored", samples=3,
        sets=("model.use_n=true", "cache.namespace=again"),
    )  # fmt: skip
    assert fake_openai.count == 12  # n=3, then n=2, then one more, per prompt
    assert len(read_lines(tmp_path / "ignored" / "results.jsonl")) == 12


def test_request_body_carries_the_sampling_parameters(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    tools = [{"type": "function", "function": {"name": "calc", "parameters": {}}}]
    run_on(
        fake_openai, prompts, tmp_path / "run",
        sets=(
            "model.temperature=0.3", "model.top_p=0.9", "model.max_tokens=17",
            'model.stop=["\\n\\n"]', 'model.extra_body={"top_k": 5}',
            f"model.tools={__import__('json').dumps(tools)}",
        ),
    )  # fmt: skip
    body = fake_openai.requests[0]
    assert body["model"] == "fake-model"
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 17
    assert body["stop"] == ["\n\n"]
    assert body["top_k"] == 5
    assert body["tools"] == tools
    assert "n" not in body


# -- the generator itself, with a recorded sleep ----------------------------------------------


async def generate_with(server: FakeOpenAI, limits: LimitsConfig) -> tuple[Any, list[float]]:
    from reward_kit.run._generate import Endpoint, Generator

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    endpoint = Endpoint(base_url=server.url, model="m", identity=server.url)
    async with Generator(endpoint=endpoint, limits=limits, sleep=sleep) as generator:
        reply = await generator.complete(
            {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
    return reply, slept


def test_retry_after_is_a_floor_on_the_backoff(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(status(429, retry_after=7), status(429, retry_after=0))
    limits = LimitsConfig(backoff_base=0.5, backoff_max=30)
    reply, slept = asyncio.run(generate_with(fake_openai, limits))
    assert reply.status == "ok"
    assert reply.attempts == 3
    assert slept[0] >= 7  # the server asked for 7 s
    assert 0.5 <= slept[1] <= 1.0  # Retry-After 0 does not cut the backoff short


def test_a_retry_after_past_the_limit_fails_the_sample(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(status(429, retry_after=3600))
    reply, slept = asyncio.run(generate_with(fake_openai, LimitsConfig(max_retry_after=60)))
    assert reply.status == "rate_limit"
    assert slept == []
    assert "max_retry_after" in reply.error


def test_requests_per_minute_are_spread_out(fake_openai: FakeOpenAI) -> None:
    from reward_kit.run._limits import TokenBucket

    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async def take(count: int, amount: float, per_minute: float) -> float:
        bucket = TokenBucket(per_minute=per_minute, clock=lambda: now[0], sleep=sleep)
        for _ in range(count):
            await bucket.acquire(amount)
        return now[0]

    # 600 a minute: a burst of 10, then one every 0.1 s.
    assert asyncio.run(take(30, 1, 600)) == pytest.approx(2.0)
    now[0] = 0.0
    # Tokens: a request larger than a second's budget still goes, and is paid back after.
    assert asyncio.run(take(3, 5000, 60_000)) == pytest.approx(10.0)


def test_model_config_rejects_a_key_in_place_of_a_variable_name() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="name of an environment variable"):
        ModelConfig(api_key_env="sk-live-0123")
