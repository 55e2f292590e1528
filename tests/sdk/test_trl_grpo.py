"""Acceptance: a real trl.GRPOTrainer run (2 steps, CPU, tiny random model, tokenizer trained
here) whose reward is served by a real `rk-serve` subprocess on loopback with an API key."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reward_kit.sdk import trl_reward

from ..conftest import ROOT, free_port
from .conftest import KEY, REWARDS

pytestmark = [
    pytest.mark.trl,
    pytest.mark.slow,
    # transformers 5.x deprecates `gradient_checkpointing` (TrainingArguments) and
    # `is_gradient_checkpointing` (models) for `activation_checkpointing`; TRL 1.16 still uses
    # both. Only those FutureWarnings are silenced; any other warning still fails the test.
    pytest.mark.filterwarnings(
        r"ignore:`(is_)?gradient_checkpointing` is deprecated:FutureWarning"
    ),
]

if importlib.util.find_spec("trl") is None:  # CI installs reward-kit[trl]; require it there
    if os.environ.get("RK_REQUIRE_INTEGRATION") == "1":
        raise RuntimeError("RK_REQUIRE_INTEGRATION=1 but trl is not installed (reward-kit[trl])")
    pytest.skip("needs reward-kit[trl] and torch==2.13.0", allow_module_level=True)


def _load_builder() -> Any:
    path = ROOT / "examples" / "trl_grpo" / "tiny_model.py"
    spec = importlib.util.spec_from_file_location("rk_tiny_model", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(_load_builder()(tmp_path_factory.mktemp("tiny-model")))


class RkServe:
    def __init__(self, url: str, seen: Path) -> None:
        self.url, self.seen = url, seen

    def completions_seen(self) -> set[str]:
        lines = self.seen.read_text(encoding="utf-8").splitlines() if self.seen.exists() else []
        return {json.loads(line) for line in lines}


@pytest.fixture(scope="module")
def rk_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RkServe]:
    """`rk-serve tests/sdk/rewards.py` as a subprocess with an API key, ready on /health."""
    port, seen = free_port(), tmp_path_factory.mktemp("seen") / "seen.jsonl"
    env = {
        **os.environ,
        "RK_API_KEYS": KEY,
        "RK_PORT": str(port),
        "RK_WORKERS": "1",
        "RK_LOG_LEVEL": "warning",
        "RK_TEST_SEEN": str(seen),
    }
    command = [str(Path(sys.executable).with_name("rk-serve")), REWARDS]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"rk-serve exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("rk-serve did not become ready in 60 s")
            time.sleep(0.1)
        yield RkServe(url, seen)
    finally:
        process.terminate()
        process.wait(timeout=30)


def dataset(conversational: bool) -> Any:
    from datasets import Dataset

    questions = [f"what is {i} plus 2?" for i in range(4)]
    prompt = [[{"role": "user", "content": q}] for q in questions] if conversational else questions
    # One prompt in four is scored with an error by the server (rewards.echo's `behaviour`).
    return Dataset.from_dict(
        {
            "prompt": prompt,
            "solution": [str(i + 2) for i in range(4)],
            "behaviour": ["good", "raise", "good", "good"],
        }
    )


def train(model_dir: Path, url: str, conversational: bool, out: Path) -> dict[str, Any]:
    import torch
    from trl import GRPOConfig, GRPOTrainer

    captured: list[dict[str, Any]] = []

    class Recording(GRPOTrainer):  # type: ignore[misc]
        """Keeps what TRL computed from our reward: NaN is how TRL stores a None."""

        def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, ids: Any) -> Any:
            rewards = super()._calculate_rewards(inputs, prompts, completions, ids)
            captured.append(
                {
                    "behaviour": [x["behaviour"] for x in inputs],
                    "completions": completions,
                    "rewards": rewards[:, 0].tolist(),
                }
            )
            return rewards

    reward = trl_reward(url, function="echo", auth=KEY)
    args = GRPOConfig(
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=8,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    torch.manual_seed(0)
    trainer = Recording(
        model=str(model_dir),
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset(conversational),
    )
    try:
        trainer.train()
    finally:
        # The reward's connections live on TRL's daemon event loop: close them there.
        asyncio.run_coroutine_threadsafe(reward.aclose(), trainer.async_loop).result(timeout=30)
    return {"calls": captured, "logs": trainer.state.log_history}


@pytest.mark.parametrize("conversational", [False, True], ids=["standard", "conversational"])
def test_grpo_trains_against_the_remote_evaluator(
    model_dir: Path, rk_serve: RkServe, tmp_path: Path, conversational: bool
) -> None:
    run = train(model_dir, rk_serve.url, conversational, tmp_path)

    assert len(run["calls"]) == 2  # one reward call per step, one batched request each
    texts = [
        c if isinstance(c, str) else c[-1]["content"]
        for call in run["calls"]
        for c in call["completions"]
    ]
    assert set(texts) <= rk_serve.completions_seen()  # the server scored what TRL generated

    pairs = [
        (b, r)
        for call in run["calls"]
        for b, r in zip(call["behaviour"], call["rewards"], strict=True)
    ]
    assert any(b == "raise" for b, _ in pairs), "the sampler never drew the failing prompt"
    for behaviour, value in pairs:
        # A server-side error reached TRL as None (stored as NaN), never as 0.
        assert math.isnan(value) if behaviour == "raise" else math.isfinite(value)

    logged = [entry["rewards/echo/mean"] for entry in run["logs"] if "rewards/echo/mean" in entry]
    assert len(logged) == 2
    assert all(math.isfinite(v) for v in logged)
    assert any("echo/failed" in entry for entry in run["logs"])  # our log_metric reached TRL
