"""SDK benchmark: a TRL-shaped reward call of 256 completions, remote against in-process, and
one batched request against 256 single requests. Prints a markdown table.

    .venv/bin/python bench/bench_sdk.py [--repeats 20] [--workers 2]

The evaluator is a real `rk-serve` subprocess on 127.0.0.1 (API key on, as in production)
serving examples/quickstart/rewards.py:exact_match with its default process isolation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))
from _common import ROOT, rk_serve

from reward_kit import load_functions
from reward_kit.sdk import (
    AsyncEvaluatorClient,
    EvaluatorClient,
    make_item,
    trl_reward,
    trl_reward_sync,
)

KEY = "bench-key-0123456789abcdef"
TARGET = str(ROOT / "examples" / "quickstart" / "rewards.py")
N = 256


def trl_batch() -> dict[str, list[str]]:
    """What GRPOTrainer passes for 64 prompts x 4 generations (standard format)."""
    prompts = [f"What is {i // 4} + {i // 4}? Answer in <answer></answer>." for i in range(N)]
    completions = [f"<think>add</think><answer>{(i // 4) * 2 + i % 2}</answer>" for i in range(N)]
    return {
        "prompts": prompts,
        "completions": completions,
        "solution": [str((i // 4) * 2) for i in range(N)],
    }


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: connections, worker processes, imports
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def row(name: str, samples: list[float], base: float | None = None) -> str:
    median = statistics.median(samples)
    p90 = sorted(samples)[int(0.9 * (len(samples) - 1))]
    extra = f"{median - base:+.1f}" if base is not None else ""
    return f"| {name} | {median:.1f} | {p90:.1f} | {N / median * 1000:,.0f} | {extra} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    batch = trl_batch()
    exact = load_functions([TARGET])["exact_match"]

    def in_process() -> list[float]:
        return [
            exact([{"role": "user", "content": p}, {"role": "assistant", "content": c}], s).score
            for p, c, s in zip(
                batch["prompts"], batch["completions"], batch["solution"], strict=True
            )
        ]

    items = [
        make_item([{"role": "user", "content": p}, {"role": "assistant", "content": c}], s)
        for p, c, s in zip(batch["prompts"], batch["completions"], batch["solution"], strict=True)
    ]
    rows = []
    with rk_serve(TARGET, "--workers", str(args.workers), env={"RK_API_KEYS": KEY}) as url:
        local = timed(in_process, args.repeats)
        base = statistics.median(local)
        rows.append(row("in-process: exact_match called 256 times", local))

        loop = asyncio.new_event_loop()  # TRL keeps one daemon loop for async rewards
        reward = trl_reward(url, function="exact_match", auth=KEY)
        rows.append(
            row(
                "remote: `trl_reward` (async, 1 batched request)",
                timed(lambda: loop.run_until_complete(reward(**batch)), args.repeats),
                base,
            )
        )
        loop.run_until_complete(reward.aclose())
        sync_reward = trl_reward_sync(url, function="exact_match", auth=KEY)
        rows.append(
            row(
                "remote: `trl_reward_sync` (1 batched request)",
                timed(lambda: sync_reward(**batch), args.repeats),
                base,
            )
        )
        sync_reward.close()

        with EvaluatorClient(url, auth=KEY) as client:
            rows.append(
                row(
                    "`batch_evaluate`: 1 request of 256 items",
                    timed(
                        lambda: client.batch_evaluate(items, function="exact_match"), args.repeats
                    ),
                    base,
                )
            )
            singles = max(3, args.repeats // 4)
            rows.append(
                row(
                    "`evaluate`: 256 sequential requests",
                    timed(
                        lambda: [
                            client.evaluate(
                                i["messages"], i["ground_truth"], function="exact_match"
                            )
                            for i in items
                        ],
                        singles,
                    ),
                    base,
                )
            )

        async def concurrent() -> None:
            async with AsyncEvaluatorClient(url, auth=KEY) as aclient:
                gate = asyncio.Semaphore(16)

                async def one(item: dict[str, object]) -> None:
                    async with gate:
                        await aclient.evaluate(
                            item["messages"],
                            item["ground_truth"],  # type: ignore[arg-type]
                            function="exact_match",
                        )

                await asyncio.gather(*(one(i) for i in items))

        rows.append(
            row(
                "async `evaluate`: 256 requests, 16 in flight",
                timed(lambda: loop.run_until_complete(concurrent()), max(3, args.repeats // 4)),
                base,
            )
        )
        loop.close()

    print(
        f"256 completions per call; rk-serve with {args.workers} worker process(es), "
        f"API key on; median of {args.repeats} (singles: fewer) after one warm-up.\n"
    )
    print("| call | median ms | p90 ms | completions/s | overhead vs in-process, ms |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
