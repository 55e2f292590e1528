"""Resume after a crash (a torn results file, a real kill -9), --rescore, and a run directory
that is never silently overwritten."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reward_kit import ConfigurationError

from ._fake_openai import FakeOpenAI
from .conftest import REWARDS, read_lines, run_on, write_rows

RK = str(Path(sys.executable).parent / "rk")


def sample_ids(out: Path) -> list[tuple[str, int]]:
    return sorted((r["prompt_id"], r["sample_index"]) for r in read_lines(out / "results.jsonl"))


def test_a_run_directory_is_never_silently_overwritten(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run_on(fake_openai, prompts, out)
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(ConfigurationError, match=r"--resume.*--rescore.*--overwrite"):
        run_on(fake_openai, prompts, out)
    assert (out / "results.jsonl").read_bytes() == before
    result = run_on(fake_openai, prompts, out, samples=2, overwrite=True)
    assert result.summary["samples"] == 8
    assert len(read_lines(out / "results.jsonl")) == 8


def test_resume_after_a_torn_write(fake_openai: FakeOpenAI, prompts: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_on(fake_openai, prompts, out, samples=3, sets=("cache.mode=off",))
    assert fake_openai.count == 12
    lines = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    # A crash: the last 4 lines never made it, and the one before was cut mid-write.
    (out / "results.jsonl").write_bytes(b"".join(lines[:7]) + lines[7][: len(lines[7]) // 2])
    (out / "summary.json").unlink()
    result = run_on(fake_openai, prompts, out, resume=True, sets=("cache.mode=off",))
    assert fake_openai.count == 12 + 5  # the torn line's sample and the 4 lost ones
    assert sample_ids(out) == sorted((f"q{p}", i) for p in range(1, 5) for i in range(3))
    assert result.summary["samples"] == 12
    assert result.summary["generation"]["requests"] == 5


def test_resume_a_run_killed_before_its_first_line(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run_on(fake_openai, prompts, out)
    (out / "results.jsonl").unlink()
    (out / "summary.json").unlink()
    result = run_on(fake_openai, prompts, out, resume=True, sets=("cache.mode=off",))
    assert result.summary["samples"] == 4
    assert fake_openai.count == 8
    with pytest.raises(ConfigurationError, match=r"needs --out RUN_DIR with a manifest\.json"):
        run_on(fake_openai, prompts, tmp_path / "never-ran", resume=True)


def test_resume_redoes_failed_generations(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    from ._fake_openai import status

    out = tmp_path / "run"
    fake_openai.script(status(400))
    first = run_on(fake_openai, prompts, out, sets=("limits.max_concurrency=1",))
    assert first.summary["generation"]["errors"] == 1
    second = run_on(fake_openai, prompts, out, resume=True)
    assert fake_openai.count == 5
    assert second.summary["generation"]["errors"] == 0
    assert len(sample_ids(out)) == 4


def test_resume_keeps_the_runs_own_config(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run_on(fake_openai, prompts, out, sets=("model.temperature=0.5",))
    with pytest.raises(ConfigurationError, match=r"'model.temperature' differs"):
        run_on(fake_openai, prompts, out, resume=True, sets=("model.temperature=0.9",))
    # Nothing given but the run directory: its manifest says the rest.
    from reward_kit.run import run

    result = run(out=str(out), resume=True, set=["scoring.workers=0"])
    assert result.summary["samples"] == 4
    assert fake_openai.count == 4


def test_rescore_makes_no_model_request(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run_on(fake_openai, prompts, out, samples=2)
    responses = {
        (r["prompt_id"], r["sample_index"]): r["response"]
        for r in read_lines(out / "results.jsonl")
    }
    fake_openai.api_key = "nobody-has-this"  # any request would now fail the run
    result = run_on(
        fake_openai, prompts, out, samples=2, rescore=True,
        rewards=[f"{REWARDS}:contains_answer", f"{REWARDS}:group_size"],
    )  # fmt: skip
    assert fake_openai.count == 8
    rows = read_lines(out / "results.jsonl")
    assert {(r["prompt_id"], r["sample_index"]): r["response"] for r in rows} == responses
    assert all(r["rewards"]["group_size"]["score"] == 0.2 for r in rows)
    assert set(result.summary["rewards"]) == {"contains_answer", "group_size"}
    assert result.summary["generation"]["requests"] == 0
    assert (out / "manifest.generation.json").exists()


def test_kill_9_then_resume_requests_only_unfinished_samples(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    data = write_rows(
        tmp_path / "rows.jsonl",
        [{"id": f"p{i}", "prompt": f"question {i}", "ground_truth": "x"} for i in range(30)],
    )
    out = tmp_path / "run"
    fake_openai.delay = 0.05  # slow enough to be killed in the middle
    command = [
        RK, "run", "--data", data, "--model", "m", "--base-url", fake_openai.url, "-n", "2",
        "--reward", f"{REWARDS}:contains_answer", "--out", str(out), "--max-concurrency", "2",
        "--cache", "off", "--quiet", "--set", "scoring.workers=0",
    ]  # fmt: skip
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env=os.environ.copy(), stderr=stderr)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while not (results.exists() and results.read_bytes().count(b"\n") >= 10):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the run wrote no results"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    kept = len(read_lines_tolerant(results))
    assert 10 <= kept < 60
    fake_openai.delay = 0.0
    fake_openai.reset_log()
    result = run_on(
        fake_openai, data, out, model="m", samples=2, resume=True, sets=("cache.mode=off",)
    )
    assert fake_openai.count == 60 - kept  # only what had not finished
    assert sorted(set(sample_ids(out))) == sample_ids(out)  # no sample twice
    assert len(sample_ids(out)) == 60
    assert result.summary["samples"] == 60


def read_lines_tolerant(path: Path) -> list[dict[str, object]]:
    rows = []
    for line in path.read_bytes().splitlines():
        with contextlib.suppress(ValueError):  # the torn last line
            rows.append(json.loads(line))
    return rows
