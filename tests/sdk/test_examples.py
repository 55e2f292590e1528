"""Smoke test of the runnable examples, each against a live `rk-serve` subprocess serving
examples/quickstart/rewards.py with an API key. examples/trl_grpo runs one GRPO step (about
8 s on CPU; the TRL acceptance test, tests/sdk/test_trl_grpo.py, checks a run in depth)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import QUICKSTART, ROOT, require_integration, rk_serve

KEY = "examples-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def evaluator() -> Iterator[str]:
    with rk_serve(QUICKSTART, "--workers", "1", env={"RK_API_KEYS": KEY}) as url:
        yield url


def run(
    example: str, *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / example), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_openrlhf_client(evaluator: str) -> None:
    done = run("openrlhf/client.py", f"{evaluator}/openrlhf/exact_match", RK_API_KEY=KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    status, _, body = done.stdout.partition(" ")
    assert status == "200"
    answer = json.loads(body)
    assert answer["rewards"] == [1.0, 0.0]
    assert answer["extra_logs"]["answer_found"] == [1.0, 1.0]


def test_openrlhf_client_without_the_key_fails_loudly(evaluator: str) -> None:
    done = run("openrlhf/client.py", f"{evaluator}/openrlhf/exact_match")
    assert done.returncode == 1
    assert done.stdout.startswith("401 ")


def test_openrlhf_reward_func(evaluator: str) -> None:
    require_integration(modules=("torch",))
    done = run("openrlhf/reward_func.py", RK_URL=evaluator, RK_API_KEY=KEY)
    assert done.returncode == 0, done.stderr
    expected = "'rewards': tensor([1.]), 'scores': tensor([1.]), 'extra_logs': {'answer_found'"
    assert expected in done.stdout


def test_verl_reward(evaluator: str) -> None:
    done = run("verl/reward.py", RK_URL=evaluator, RK_API_KEY=KEY)
    assert done.returncode == 0, done.stderr
    one, batch = done.stdout.strip().splitlines()
    assert one == "{'score': 1.0, 'answer_found': 1.0}"
    assert batch == "[{'score': 1.0, 'answer_found': 1.0}, {'score': 0.0, 'answer_found': 1.0}]"


def test_fireworks_try_shim(evaluator: str) -> None:
    done = run("fireworks/try_shim.py", "--url", evaluator, RK_API_KEY=KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["score"], result["is_score_valid"]) == (1.0, True)
    wrong = run("fireworks/try_shim.py", "--url", evaluator, "--ground-truth", "5", RK_API_KEY=KEY)
    assert wrong.returncode == 0
    assert json.loads(wrong.stdout)["score"] == 0.0
    unkeyed = run("fireworks/try_shim.py", "--url", evaluator, RK_API_KEY="")
    assert unkeyed.returncode == 1
    assert "RK_API_KEY is not set" in json.loads(unkeyed.stdout)["reason"]


@pytest.mark.trl
@pytest.mark.slow
def test_trl_grpo_trains_one_step(evaluator: str, tmp_path: Path) -> None:
    require_integration(modules=("trl", "torch"), reason="needs reward-kit[trl] and torch")
    readme = (ROOT / "examples" / "trl_grpo" / "README.md").read_text()
    assert "python examples/trl_grpo/train.py --url" in readme  # says how to run it
    done = run(
        "trl_grpo/train.py", "--url", evaluator, "--steps", "1", cwd=tmp_path, RK_API_KEY=KEY
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rewards/exact_match/mean" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("example", "variable", "value", "expected"),
    [
        ("verl/reward.py", "RK_ON_ERROR", "zero", "RK_ON_ERROR='zero': expected a finite number"),
        ("verl/reward.py", "RK_ON_ERROR", "nan", "RK_ON_ERROR='nan': expected a finite number"),
        ("verl/reward.py", "RK_METRIC_NAMES", "a,,b", "RK_METRIC_NAMES='a,,b': expected metric"),
        (
            "openrlhf/reward_func.py",
            "RK_OPENRLHF_ON_ERROR",
            "-1,5",
            "RK_OPENRLHF_ON_ERROR='-1,5': expected a finite number",
        ),
    ],
)
def test_examples_refuse_a_bad_setting_naming_it(
    example: str, variable: str, value: str, expected: str
) -> None:
    done = run(example, RK_URL="http://127.0.0.1:9", **{variable: value})
    assert done.returncode == 1
    assert expected in done.stderr


def test_verl_reward_with_a_fallback_logs_the_metrics_named(evaluator: str) -> None:
    done = run(
        "verl/reward.py",
        RK_URL=evaluator,
        RK_API_KEY=KEY,
        RK_ON_ERROR="-1",
        RK_METRIC_NAMES="answer_found",
    )
    assert done.returncode == 0, done.stderr
    one = done.stdout.strip().splitlines()[0]
    assert one == "{'score': 1.0, 'answer_found': 1.0, 'reward_kit_failed': 0.0}"
