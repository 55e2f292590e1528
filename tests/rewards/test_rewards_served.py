"""Built-ins served for real: a rewards file importing them (plus a combine() and an
operator-configured judge) under an ``rk-serve`` subprocess, ``rk eval`` over them, and a
math-verify input that hangs, stopped by the engine's deadline while the other rows score."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import FIXTURES, metric, rk_serve
from .conftest import FakeJudge

REWARDS = str(FIXTURES / "rewards_builtins_served.py")
# 9^(9^(9^(9^9))): math-verify (sympy) tries to evaluate the tower and never returns.
TOWER = "$\\boxed{9^{9^{9^{9^{9}}}}}$"


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


def test_builtins_served_by_rk_serve(fake_judge: FakeJudge) -> None:
    fake_judge.reply('{"score": 8, "reason": "right"}')
    env = {"RK_TEST_JUDGE_URL": fake_judge.url, "RK_TEST_JUDGE_KEY": "sk-judge"}
    with rk_serve(REWARDS, "--workers", "1", env=env) as url:
        names = {f["name"] for f in httpx.get(f"{url}/functions").json()["functions"]}
        assert names >= {"gsm8k_reward", "math_verify_reward", "math_and_format", "judge"}

        body = {"messages": say("3 + 4 = 7\n#### 7"), "ground_truth": "#### 7"}
        gsm8k = httpx.post(f"{url}/evaluate/gsm8k_reward", json=body, timeout=60).json()
        assert gsm8k["score"] == 1.0
        assert gsm8k["metrics"]["answer_extracted"]["reason"] == "7 (after ####)"

        body = {"messages": say("So $\\boxed{\\frac{1}{2}}$"), "ground_truth": "0.5"}
        math = httpx.post(f"{url}/evaluate/math_verify_reward", json=body, timeout=60).json()
        assert (math["score"], math["metrics"]["equivalent"]["score"]) == (1.0, 1.0)

        text = "<think>half</think><answer>$\\boxed{\\frac{1}{2}}$</answer>"
        body = {"messages": say(text), "ground_truth": "0.5"}
        both = httpx.post(f"{url}/evaluate/math_and_format", json=body, timeout=60).json()
        assert both["score"] == pytest.approx(1.0)
        assert both["metrics"]["math_verify_reward"]["score"] == 1.0
        assert both["metrics"]["format_reward.format"]["score"] == 1.0

        body = {"messages": say("4"), "kwargs": {"base_url": "http://192.0.2.1/v1"}}
        judged = httpx.post(f"{url}/evaluate/judge", json=body, timeout=60).json()
        assert judged["score"] == pytest.approx(0.8)
        assert judged["metrics"]["judge"]["reason"].startswith("8 on [0, 10]")
        (request,) = fake_judge.requests
        assert request["auth"] == "Bearer sk-judge"
        assert "Is the arithmetic right?" in request["body"]["messages"][0]["content"]

        items = [
            {"messages": say("#### 7"), "ground_truth": "7"},
            {"messages": say("#### 7"), "ground_truth": {"answer": 7}},
            {"messages": say("#### 8"), "ground_truth": "7"},
        ]
        batch = httpx.post(f"{url}/batch_evaluate/gsm8k_reward", json={"items": items}).json()
        assert [r["status"] for r in batch["results"]] == ["ok", "invalid", "ok"]
        assert [r["result"]["score"] for r in batch["results"] if r["result"]] == [1.0, 0.0]
        assert "ground_truth: gsm8k_reward expected" in batch["results"][1]["error"]["message"]

        prometheus = httpx.get(f"{url}/metrics").text
        assert metric(prometheus, "rk_items_total", function="gsm8k_reward", status="ok") == 3
        assert metric(prometheus, "rk_items_total", function="gsm8k_reward", status="invalid") == 1
        assert metric(prometheus, "rk_items_total", function="judge", status="ok") == 1


def _rk_eval(tmp_path: Path, rows: list[dict[str, Any]], *args: str) -> list[dict[str, Any]]:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "reward_kit.cli", "eval", REWARDS, "--data", str(data),
               "--out", str(out), "--workers", "1", "--quiet", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_rk_eval_scores_builtins_and_a_combination(tmp_path: Path) -> None:
    rows = [
        {"messages": say("$\\boxed{\\frac{1}{2}}$"), "ground_truth": "0.5"},
        {"messages": say("$\\boxed{3}$"), "ground_truth": "$4$"},
        {"messages": say("<think>t</think><answer>$\\boxed{4}$</answer>"), "ground_truth": "4"},
    ]
    results = _rk_eval(tmp_path, rows, "--function", "math_verify_reward")
    assert [r["result"]["score"] for r in results] == [1.0, 0.0, 1.0]
    combined = _rk_eval(tmp_path, rows, "--function", "math_and_format")
    assert [r["status"] for r in combined] == ["ok", "ok", "ok"]
    assert [r["result"]["score"] for r in combined] == pytest.approx([0.8, 0.0, 1.0])
    assert combined[2]["result"]["metrics"]["format_reward"]["score"] == 1.0


def test_the_hanging_input_really_hangs_in_process() -> None:
    code = (
        "from reward_kit.rewards import math_verify_reward\n"
        f"math_verify_reward([{{'role': 'assistant', 'content': {TOWER!r}}}], ground_truth='5')\n"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=8, check=False)


def test_a_hanging_math_verify_row_times_out_and_the_others_score(tmp_path: Path) -> None:
    rows = [
        {"messages": say("$\\boxed{2}$"), "ground_truth": "2"},
        {"messages": say(TOWER), "ground_truth": "5"},
        {"messages": say("$\\boxed{3}$"), "ground_truth": "2"},
    ]
    start = time.monotonic()
    results = _rk_eval(tmp_path, rows, "--function", "math_verify_reward", "--timeout", "4")
    assert time.monotonic() - start < 90
    assert [r["status"] for r in results] == ["ok", "timeout", "ok"]
    assert results[1]["result"] is None
    assert results[1]["error"]["code"] == "timeout"
    assert [results[0]["result"]["score"], results[2]["result"]["score"]] == [1.0, 0.0]
