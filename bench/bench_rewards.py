"""Built-in reward throughput: HumanEval in the bubblewrap sandbox, and math-verify.

(a) HumanEval: the 164 canonical solutions through the engine's worker pool (items/s), vs one
    process scoring them in a loop, and through `rk eval` (a subprocess, start-up included).
(b) Math: the 233 math-verify regression cases through the engine (items/s, agreement with
    the expected verdict), vs an in-process loop.

Prints markdown. RK_BENCH_RUNS (default 3) sets how many runs each median takes.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reward_kit.rewards import humaneval_problems, humaneval_reward, math_verify_reward
from reward_kit.service._engine import Call, Engine, default_workers
from reward_kit.service._outcome import Item

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT.parent / "shared" / "data" / "math_verify_cases.jsonl"
RUNS = int(os.environ.get("RK_BENCH_RUNS", "3"))


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


def median_rate(count: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def engine_rate(fn: Any, items: list[Item], timeout: float) -> tuple[float, list[float]]:
    """Items/s through a started, warmed engine (pool start-up not counted), and the scores."""

    async def go() -> tuple[float, list[float]]:
        async with Engine(functions={fn.name: fn}) as engine:
            calls = [Call(fn, item, timeout) for item in items]
            outcomes = await engine.run(calls)  # warm: imports and caches in every worker
            times = []
            for _ in range(RUNS):
                start = time.perf_counter()
                await engine.run(calls)
                times.append(time.perf_counter() - start)
        failed = [o.error for o in outcomes if o.status != "ok"]
        if failed:
            raise RuntimeError(f"{len(failed)} item(s) failed: {failed[:3]}")
        scores = [float(o.result["score"]) for o in outcomes if o.result is not None]
        return len(items) / statistics.median(times), scores

    return asyncio.run(go())


def humaneval() -> list[tuple[str, str]]:
    problems = humaneval_problems()
    items = [Item(say(p["canonical_solution"]), ground_truth=p) for p in problems]
    pool, scores = engine_rate(humaneval_reward, items, 60.0)
    assert scores == [1.0] * len(problems), "a canonical solution did not score 1.0"

    def loop() -> None:
        for item in items:
            humaneval_reward(item.messages, ground_truth=item.ground_truth)

    inline = median_rate(len(items), loop)
    rows = [
        ("HumanEval, engine worker pool", f"{pool:.1f}"),
        ("HumanEval, one process in a loop (baseline)", f"{inline:.1f}"),
    ]
    rk = Path(sys.executable).parent / "rk"
    if rk.exists():
        with tempfile.TemporaryDirectory() as folder:
            data = Path(folder, "humaneval.jsonl")
            data.write_text(
                "".join(
                    json.dumps({"messages": i.messages, "ground_truth": i.ground_truth}) + "\n"
                    for i in items
                )
            )
            command = [
                str(rk),
                "eval",
                "reward_kit.rewards:humaneval_reward",
                "--data",
                str(data),
                "--quiet",
                "--strict",
                "--out",
                str(Path(folder, "out.jsonl")),
            ]
            rate = median_rate(
                len(items), lambda: subprocess.run(command, check=True, capture_output=True)
            )
        rows.append(("HumanEval, `rk eval` (incl. start-up)", f"{rate:.1f}"))
    return rows


def math() -> list[tuple[str, str]]:
    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    items = [
        Item(
            say(c["prediction"]),
            ground_truth=c["gold"],
            kwargs={"match_types": c["match_types"], "float_rounding": c["float_rounding"]},
        )
        for c in cases
    ]
    pool, scores = engine_rate(math_verify_reward, items, 30.0)
    agree = sum((s == 1.0) == c["expected"] for s, c in zip(scores, cases, strict=True))

    def loop() -> None:
        for item in items:
            math_verify_reward(item.messages, ground_truth=item.ground_truth, **item.kwargs)

    inline = median_rate(len(items), loop)
    return [
        (f"math-verify agreement ({len(cases)} cases)", f"{agree / len(cases):.1%}"),
        ("math-verify, engine worker pool", f"{pool:.1f}"),
        ("math-verify, one process in a loop (baseline)", f"{inline:.1f}"),
    ]


def main() -> None:
    print(f"Built-in rewards, {default_workers()} worker(s), median of {RUNS} run(s)\n")
    print("| Measure | items/s (or %) |")
    print("| --- | --- |")
    for label, value in humaneval() + math():
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
