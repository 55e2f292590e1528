"""Train the tiny model with GRPO for a few steps, rewarded by a remote reward-kit evaluator.

    export RK_API_KEY=$(python -c "import secrets; print(secrets.token_hex(16))")
    RK_API_KEYS=$RK_API_KEY rk-serve examples/quickstart/rewards.py &     # the evaluator
    python examples/trl_grpo/train.py --url http://127.0.0.1:8000       # the trainer

Needs `pip install torch==2.13.0 'reward-kit[trl]'` (torch first: see docs/sdk.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from reward_kit.sdk import trl_reward

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_model import build_tiny_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--function", default="exact_match")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--model-dir", default="tiny-model")
    parser.add_argument("--conversational", action="store_true")
    args = parser.parse_args()

    if not Path(args.model_dir, "config.json").exists():
        build_tiny_model(args.model_dir)
    questions = [f"what is {i} plus 2? answer in <answer></answer>" for i in range(16)]
    prompts = (
        [[{"role": "user", "content": q}] for q in questions] if args.conversational else questions
    )
    # Every dataset column but "prompt" reaches the reward: "solution" is the ground truth.
    dataset = Dataset.from_dict({"prompt": prompts, "solution": [str(i + 2) for i in range(16)]})

    reward = trl_reward(args.url, function=args.function, auth=os.environ["RK_API_KEY"])
    config = GRPOConfig(
        output_dir="grpo-out",
        max_steps=args.steps,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=16,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=args.model_dir, reward_funcs=[reward], args=config, train_dataset=dataset
    )
    try:
        trainer.train()  # logs rewards/exact_match/mean every step
    finally:
        # The reward's connections live on TRL's event loop; close them there.
        asyncio.run_coroutine_threadsafe(reward.aclose(), trainer.async_loop).result()


if __name__ == "__main__":
    main()
