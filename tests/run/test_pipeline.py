"""rk run end to end against the fake endpoint: the output contract, scoring, statistics."""

from __future__ import annotations

import asyncio
import hashlib
import json
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

import reward_kit
from reward_kit.run import RunResult, arun

from ._fake_openai import FakeOpenAI, status
from .conftest import REWARDS, read_lines, run_on, write_rows

ROW_KEYS = {
    "prompt_id", "sample_index", "seed", "messages", "response", "ground_truth", "generation",
    "rewards",
}  # fmt: skip
ENTRY_KEYS = {"score", "is_score_valid", "reason", "metrics", "status"}


def seed_of(run_seed: int, prompt_id: str, index: int) -> int:
    digest = hashlib.sha256(f"{run_seed}\0{prompt_id}\0{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def by_seed_parity(body: dict[str, Any]) -> str:
    """Right on even seeds, wrong on odd ones: a mix of passes within each prompt."""
    question = body["messages"][-1]["content"]
    a = int(question.split()[2])
    answer = 2 * a if body["seed"] % 2 == 0 else 2 * a + 1
    return f"The answer is {answer}."


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """The fraction of k-subsets of n samples (c correct) that hold a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


def test_the_output_contract(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    fake_openai.responder = by_seed_parity
    out = tmp_path / "run"
    result = run_on(fake_openai, prompts, out, samples=4, k=[1, 2, 4], seed=7)
    rows = read_lines(out / "results.jsonl")
    assert len(rows) == 16
    assert fake_openai.count == 16
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["seed"] == seed_of(7, row["prompt_id"], row["sample_index"])
        assert row["messages"] == [{"role": "user", "content": row["messages"][0]["content"]}]
        assert {"status", "finish_reason", "usage", "cached", "attempts"} <= set(row["generation"])
        assert row["generation"]["status"] == "ok"
        assert row["generation"]["attempts"] == 1
        assert set(row["rewards"]) == {"contains_answer"}
        entry = row["rewards"]["contains_answer"]
        assert set(entry) == ENTRY_KEYS
        assert entry["status"] == "ok"
        assert entry["score"] == float(row["seed"] % 2 == 0)
    # Each sample's own seed went to the endpoint.
    assert sorted(b["seed"] for b in fake_openai.requests) == sorted(r["seed"] for r in rows)
    assert len({r["seed"] for r in rows}) == 16
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.summary
    assert set(summary) == {"samples", "prompts", "rewards", "generation", "wall_s"}
    assert summary["samples"] == 16
    assert summary["prompts"] == 4
    reward = summary["rewards"]["contains_answer"]
    assert {"mean", "ci", "pass_at_k", "pass_hat_k", "statuses", "metrics"} <= set(reward)
    # pass@k from the results file, by enumeration.
    per_prompt: dict[str, list[bool]] = {}
    for row in rows:
        per_prompt.setdefault(row["prompt_id"], []).append(
            row["rewards"]["contains_answer"]["score"] == 1.0
        )
    for k in (1, 2, 4):
        expected = sum(brute_pass_at_k(4, sum(v), k) for v in per_prompt.values()) / 4
        assert abs(reward["pass_at_k"][str(k)] - expected) < 1e-12
    passes = sum(sum(v) for v in per_prompt.values())
    assert reward["mean"] == passes / 16
    assert reward["ci"][0] <= reward["mean"] <= reward["ci"][1]
    assert reward["statuses"] == {"ok": 16}
    assert "length" in reward["metrics"]
    generation = summary["generation"]
    assert generation["requests"] == 16
    assert generation["cache_hits"] == 0
    assert generation["errors"] == 0
    assert generation["prompt_tokens"] == sum(
        r["generation"]["usage"]["prompt_tokens"] for r in rows
    )
    assert generation["completion_tokens"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["samples"] == 4
    assert manifest["seeds"]["run"] == 7
    assert manifest["dataset"]["sha256"] == hashlib.sha256(Path(prompts).read_bytes()).hexdigest()
    assert manifest["endpoint"]["model"] == "fake-model"
    assert (
        manifest["rewards"]["contains_answer"]["file_sha256"]
        == hashlib.sha256(Path(REWARDS).read_bytes()).hexdigest()
    )
    assert manifest["reward_kit"] == reward_kit.__version__


def test_system_prompt_fields_and_kwargs(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    data = write_rows(
        tmp_path / "rows.jsonl",
        [
            {"question": "say hi", "answer": "hi", "weight": 0.25},
            {"question": "say yo", "answer": "yo", "weight": 0.75},
        ],
    )
    out = tmp_path / "run"
    run_on(
        fake_openai, data, out, rewards=[f"{REWARDS}:weighted"], system_prompt="Be brief.",
        sets=("data.fields.prompt=question", "data.fields.ground_truth=answer"),
    )  # fmt: skip
    rows = read_lines(out / "results.jsonl")
    assert {r["ground_truth"] for r in rows} == {"hi", "yo"}
    assert {r["rewards"]["weighted"]["score"] for r in rows} == {0.25, 0.75}
    for body in fake_openai.requests:
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    # No id in the rows: a content hash, the same on every run.
    ids = {r["prompt_id"] for r in rows}
    assert len(ids) == 2
    assert all(len(i) == 16 for i in ids)


def test_batch_rewards_score_each_prompt_as_one_group(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = run_on(
        fake_openai, prompts, out, samples=3,
        rewards=[f"{REWARDS}:contains_answer", f"{REWARDS}:group_size"],
    )  # fmt: skip
    rows = list(result)
    assert len(rows) == 12
    for row in rows:
        entry = row["rewards"]["group_size"]
        assert entry["score"] == 0.3  # 3 samples per group
        assert entry["metrics"]["distinct"]["score"] == 3.0  # the seeds made them differ
        assert list(row["rewards"]) == ["contains_answer", "group_size"]


def test_a_failed_generation_is_recorded_and_never_scored(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    fake_openai.script(status(400, {"error": {"message": "unsupported parameter"}}))
    out = tmp_path / "run"
    result = run_on(
        fake_openai, prompts, out, samples=2, k=[1, 2],
        rewards=[f"{REWARDS}:contains_answer", f"{REWARDS}:group_size"],
        sets=("limits.max_concurrency=1",),
    )  # fmt: skip
    rows = read_lines(out / "results.jsonl")
    failed = [r for r in rows if r["generation"]["status"] != "ok"]
    assert len(failed) == 1
    assert fake_openai.count == 8
    row = failed[0]
    assert row["generation"]["status"] == "bad_request"
    assert "unsupported parameter" in row["generation"]["error"]
    assert row["response"] is None
    for entry in row["rewards"].values():
        assert entry["status"] == "skipped"
        assert entry["score"] is None
    summary = result.summary
    assert summary["generation"]["errors"] == 1
    assert summary["generation"]["statuses"] == {"bad_request": 1, "ok": 7}
    reward = summary["rewards"]["contains_answer"]
    assert reward["statuses"] == {"ok": 7, "skipped": 1}
    assert reward["count"] == 7
    # The failed sample's prompt has one valid sample: it has pass@1 but no pass@2.
    sibling = next(r for r in rows if r["prompt_id"] == row["prompt_id"] and r is not row)
    assert sibling["rewards"]["group_size"]["score"] == 0.1  # its group had one member


def test_undefined_pass_at_k_is_null(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    data = write_rows(tmp_path / "one.jsonl", [{"id": "a", "prompt": "1", "ground_truth": "1"}])
    fake_openai.script(status(400))
    out = tmp_path / "run"
    run_on(fake_openai, data, out, samples=2, k=[1, 2], sets=("limits.max_concurrency=1",))
    summary = json.loads((out / "summary.json").read_text())
    reward = summary["rewards"]["contains_answer"]
    assert reward["pass_at_k"] == {"1": 1.0, "2": None}
    assert reward["pass_hat_k"]["2"] is None
    assert reward["ci"] == [None, None]  # one prompt: no spread between prompts to measure


def test_reward_errors_are_statuses_not_zeros(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    result = run_on(fake_openai, prompts, tmp_path / "run", rewards=[f"{REWARDS}:always_fails"])
    for row in result:
        entry = row["rewards"]["always_fails"]
        assert entry["status"] == "error"
        assert entry["score"] is None
        assert "always fails" in entry["reason"]
    reward = result.summary["rewards"]["always_fails"]
    assert reward["mean"] is None
    assert reward["statuses"] == {"error": 4}
    assert reward["pass_at_k"] == {"1": None}


def test_identical_samples_are_flagged(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_openai.responder = lambda body: "the same every time"
    result = run_on(fake_openai, prompts, tmp_path / "run", samples=3)
    assert result.summary["generation"]["identical_groups"] == 4
    # No table here (no progress): the warning reaches stderr all the same.
    assert "warning: 4 prompts got identical replies" in capsys.readouterr().err
    result = run_on(
        fake_openai, prompts, tmp_path / "greedy", samples=3, sets=("model.temperature=0",)
    )
    assert result.summary["generation"]["identical_groups"] == 0  # expected at temperature 0
    assert "identical" not in capsys.readouterr().err


def test_the_python_api(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    assert callable(reward_kit.run)
    assert reward_kit.run.run is reward_kit.run.run
    result = asyncio.run(
        arun(
            {"data": {"path": prompts}, "model": {"name": "m", "base_url": fake_openai.url}},
            rewards=f"{REWARDS}:contains_answer",
            out=tmp_path / "async",
            set=["scoring.workers=0"],
        )
    )
    assert isinstance(result, RunResult)
    assert result.summary["samples"] == 4

    # The package itself is callable, and works from inside a running loop too.
    async def inside_a_loop() -> RunResult:
        return reward_kit.run(  # type: ignore[operator,no-any-return]
            data=prompts, model="m", base_url=fake_openai.url, out=str(tmp_path / "nested"),
            rewards=[f"{REWARDS}:contains_answer"], set=["scoring.workers=0"],
        )  # fmt: skip

    nested = asyncio.run(inside_a_loop())
    assert [r["prompt_id"] for r in nested.samples()] != []
    assert nested.summary["generation"]["cache_hits"] == 4  # same requests as the async run


def test_scoring_in_worker_processes(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    from reward_kit.run import run

    fake_openai.responder = by_seed_parity
    result = run(
        data=prompts, base_url=fake_openai.url, model="m", out=str(tmp_path / "run"),
        rewards=[f"{REWARDS}:contains_answer", f"{REWARDS}:group_size"], samples=2,
        set=["scoring.workers=1"],
    )  # fmt: skip
    statuses = {e["status"] for r in result for e in r["rewards"].values()}
    assert statuses == {"ok"}
    assert result.summary["samples"] == 8
