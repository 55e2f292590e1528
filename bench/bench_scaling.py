"""Scale-out: items/s against the number of evaluator replicas, the SDK sharding across them.

    .venv/bin/python bench/bench_scaling.py

Real `rk-serve` processes on 127.0.0.1 (API key on), each with `--workers 1`; one
`EvaluatorClient` given every replica's URL cuts each batch into one shard per replica. The
baseline is one replica of one worker, measured in the same run. A third setup, one replica of
two workers, is the same cores in one server. The client runs on the same machine's cores.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import ExitStack
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _common import ROOT, RUNS, rk_serve, table

from reward_kit import load_functions
from reward_kit.sdk import EvaluatorClient, make_item

KEY = "bench-key-0123456789abcdef"
APP = str(ROOT / "bench" / "apps" / "scaling_rewards.py")
CPU_ITEMS = 600
CPU_MS = 5.0
TRIVIAL_ITEMS = 10_000
SETUPS = [("1 replica x 1 worker (baseline)", 1, 1), ("2 replicas x 1 worker", 2, 1)]
SETUPS += [("1 replica x 2 workers (same cores, one server)", 1, 2)]
LOOP = "for reference: the reward in a loop in this process (1 core, no HTTP, no server)"


def calibrate() -> int:
    """Iterations of ``work`` that take CPU_MS on an idle core of this machine: the fastest of
    several timings, as other processes can only make one slower."""
    work = load_functions([APP])["work"]
    n = 200_000
    took = []
    for _ in range(7):
        start = time.perf_counter()
        work([{"role": "assistant", "content": "x"}], n=n)
        took.append((time.perf_counter() - start) * 1000)
    return int(n * CPU_MS / min(took))


def in_process(items: list[dict[str, Any]], function: str) -> float:
    """The same items through the reward called in a loop here: one core, no server."""
    reward = load_functions([APP])[function]
    start = time.perf_counter()
    for item in items:
        reward(item["messages"], item.get("ground_truth"), **item.get("kwargs", {}))
    return len(items) / (time.perf_counter() - start)


def throughput(client: EvaluatorClient, items: list[dict[str, Any]], function: str) -> float:
    start = time.perf_counter()
    results = client.batch_evaluate(items, function=function)
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
    return len(items) / elapsed


def measure(n: int) -> dict[str, dict[str, list[float]]]:
    """Every setup's runs, interleaved (run 1 of each setup, then run 2...), so a change in
    the machine's other load lands on every setup alike rather than on one."""
    cpu = [make_item([{"role": "assistant", "content": "x"}], kwargs={"n": n})] * CPU_ITEMS
    trivial = [make_item([{"role": "assistant", "content": "4"}], "4")] * TRIVIAL_ITEMS
    rows: dict[str, dict[str, list[float]]] = {"work": {}, "exact_match": {}}
    env = {"RK_API_KEYS": KEY}
    with ExitStack() as stack:
        # Idle servers take no CPU: all of them run throughout, each setup uses its own.
        one = [stack.enter_context(rk_serve(APP, "--workers", "1", env=env)) for _ in range(2)]
        two = stack.enter_context(rk_serve(APP, "--workers", "2", env=env))
        urls = {SETUPS[0][0]: one[:1], SETUPS[1][0]: one, SETUPS[2][0]: [two]}
        clients = {
            label: stack.enter_context(EvaluatorClient(u, auth=KEY)) for label, u in urls.items()
        }
        for function, items in (("work", cpu), ("exact_match", trivial)):
            for label, client in clients.items():
                throughput(client, items, function)  # warm-up: connections, workers, imports
                rows[function][label] = []
            rows[function][LOOP] = []
            for _ in range(RUNS):
                for label, client in clients.items():
                    rows[function][label].append(throughput(client, items, function))
                rows[function][LOOP].append(in_process(items, function))
    return rows


def section(rows: dict[str, list[float]], what: str) -> str:
    base = statistics.median(rows[SETUPS[0][0]])
    lines = [
        [label, f"{statistics.median(v):,.0f}", f"{statistics.median(v) / base:.2f}x"]
        for label, v in rows.items()
    ]
    return f"{what}\n\n" + table(["setup", "items/s (median)", "ratio to 1 replica"], lines)


def main() -> None:
    before = os.getloadavg()[0]
    n = calibrate()
    rows = measure(n)
    after = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0))
    print(
        f"On {cores} cores; median of {RUNS} batches per setup, each after one warm-up batch; "
        "the setups' runs are interleaved, so the machine's other load falls on each alike. "
        f"Load average (1 min) before the run {before:.1f}, after it {after:.1f}: replicas can "
        "only scale with cores nothing else is using.\n"
    )
    print(
        section(
            rows["work"],
            f"### (a) CPU-bound reward (~{CPU_MS:g} ms of arithmetic per item on an idle core), "
            f"{CPU_ITEMS} items per batch",
        )
    )
    print()
    print(
        section(
            rows["exact_match"],
            f"### (b) trivial reward (exact match in the worker pool), {TRIVIAL_ITEMS:,} items "
            "per batch",
        )
    )
    print(
        "\nCommand: `python bench/bench_scaling.py` (part of `make bench`). What the figures "
        "mean for a deployment: [scaling.md](scaling.md)."
    )


if __name__ == "__main__":
    main()
