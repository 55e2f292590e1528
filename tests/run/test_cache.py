"""The generation cache: hits across runs, keyed on everything that changes the answer,
shared safely by concurrent runs, and rk cache stats|clear."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reward_kit.cli import cli
from reward_kit.run import GenerationCache, default_cache_path

from ._fake_openai import FakeOpenAI
from .conftest import read_lines, run_on


def test_a_rerun_makes_no_request(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    first = run_on(fake_openai, prompts, tmp_path / "one", samples=3)
    assert fake_openai.count == 12
    assert first.summary["generation"]["cache_hits"] == 0
    second = run_on(fake_openai, prompts, tmp_path / "two", samples=3)
    assert fake_openai.count == 12  # zero new requests
    assert second.summary["generation"]["requests"] == 0
    assert second.summary["generation"]["cache_hits"] == 12
    rows = read_lines(tmp_path / "two" / "results.jsonl")
    assert all(r["generation"]["cached"] for r in rows)
    key = lambda r: (r["prompt_id"], r["sample_index"])  # noqa: E731
    before = {key(r): r["response"] for r in read_lines(tmp_path / "one" / "results.jsonl")}
    assert {key(r): r["response"] for r in rows} == before
    assert second.summary["rewards"] == first.summary["rewards"]


def test_the_key_covers_what_changes_the_answer(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    run_on(fake_openai, prompts, tmp_path / "base", samples=2)
    assert fake_openai.count == 8
    variants: list[tuple[dict[str, Any], tuple[str, ...], int]] = [
        ({}, ("model.temperature=0.9",), 8),
        ({}, ("model.max_tokens=5",), 8),
        ({}, ('model.extra_body={"top_k": 3}',), 8),
        ({"seed": 1}, (), 8),
        ({"model": "other-model"}, (), 8),
        ({"system_prompt": "You are terse."}, (), 8),
        ({}, ("cache.namespace=fresh",), 8),
        ({"samples": 3}, (), 4),  # only the new sample index of each prompt
        ({}, ("model.send_seed=false",), 8),
    ]
    for number, (options, sets, expected) in enumerate(variants):
        before = fake_openai.count
        run_on(
            fake_openai, prompts, tmp_path / f"v{number}", sets=sets, **{"samples": 2, **options}
        )
        assert fake_openai.count - before == expected, (options, sets)


def test_cache_modes(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    run_on(fake_openai, prompts, tmp_path / "off", sets=("cache.mode=off",))
    run_on(fake_openai, prompts, tmp_path / "read", sets=("cache.mode=read",))
    assert fake_openai.count == 8  # neither wrote anything
    run_on(fake_openai, prompts, tmp_path / "on")
    run_on(fake_openai, prompts, tmp_path / "refresh", sets=("cache.mode=refresh",))
    assert fake_openai.count == 16  # refresh never reads
    run_on(fake_openai, prompts, tmp_path / "read2", sets=("cache.mode=read",))
    assert fake_openai.count == 16


def test_two_runs_share_one_cache_at_once(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    from .conftest import write_rows

    data = write_rows(
        tmp_path / "many.jsonl",
        [{"id": f"p{i}", "prompt": f"q {i}", "ground_truth": "x"} for i in range(60)],
    )
    fake_openai.delay = 0.002
    errors: list[BaseException] = []

    def one(name: str) -> None:
        try:
            run_on(
                fake_openai, data, tmp_path / name, samples=2, sets=("limits.max_concurrency=8",)
            )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=one, args=(f"run{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for name in ("run0", "run1"):
        assert len(read_lines(tmp_path / name / "results.jsonl")) == 120
    assert 120 <= fake_openai.count <= 240  # each sample asked once or twice, never lost
    cache = GenerationCache(default_cache_path(), mode="read")
    try:
        assert cache.stats()["entries"] == 120
    finally:
        cache.close()
    before = fake_openai.count
    run_on(fake_openai, data, tmp_path / "third", samples=2)
    assert fake_openai.count == before


def test_cache_stats_and_clear(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(cli, ["cache", "stats", "--json"])
    assert empty.exit_code == 0
    assert json.loads(empty.output)["entries"] == 0
    run_on(fake_openai, prompts, tmp_path / "a")
    run_on(fake_openai, prompts, tmp_path / "b", model="second-model")
    stats = json.loads(runner.invoke(cli, ["cache", "stats", "--json"]).output)
    assert stats["entries"] == 8
    assert stats["models"] == {"fake-model": 4, "second-model": 4}
    assert stats["path"] == str(default_cache_path())
    text = runner.invoke(cli, ["cache", "stats"]).output
    assert "entries: 8" in text
    assert "second-model: 4" in text
    cleared = runner.invoke(cli, ["cache", "clear", "--model", "second-model", "--yes"])
    assert cleared.exit_code == 0
    assert "deleted 4 entries" in cleared.output
    refused = runner.invoke(cli, ["cache", "clear"], input="n\n")
    assert refused.exit_code != 0
    assert json.loads(runner.invoke(cli, ["cache", "stats", "--json"]).output)["entries"] == 4
    assert "deleted 4 entries" in runner.invoke(cli, ["cache", "clear", "--yes"]).output
    before = fake_openai.count
    run_on(fake_openai, prompts, tmp_path / "c")
    assert fake_openai.count == before + 4


def test_values_are_json_not_pickle(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    import sqlite3

    run_on(fake_openai, prompts, tmp_path / "a")
    db = sqlite3.connect(default_cache_path())
    try:
        values = [json.loads(v) for (v,) in db.execute("SELECT value FROM generations")]
        components = [json.loads(c) for (c,) in db.execute("SELECT components FROM generations")]
    finally:
        db.close()
    assert len(values) == 4
    assert all(v["response"].startswith("echo") for v in values)
    assert {c["endpoint"] for c in components} == {fake_openai.url}
    assert sorted(c["index"] for c in components) == [0, 0, 0, 0]


def test_a_cached_rerun_needs_no_endpoint(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KEY", "k")
    run_on(fake_openai, prompts, tmp_path / "one", api_key_env="FAKE_KEY")
    monkeypatch.delenv("FAKE_KEY")  # no key now: fine, since no request is needed
    second = run_on(fake_openai, prompts, tmp_path / "two", api_key_env="FAKE_KEY")
    assert second.summary["generation"]["cache_hits"] == 4
    assert fake_openai.count == 4
