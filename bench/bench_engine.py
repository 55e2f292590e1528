"""Engine and server throughput, each against a baseline measured in the same run.

(a) /batch_evaluate of 1,000 trivial items vs the same function called in-process in a loop.
(b) a ~5 ms CPU-bound reward: items/s through the server's pool vs a sequential in-process loop.
(c) /health p99 latency while (b) runs.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _common import ROOT, RUNS, median_of, percentile, rk_serve, table

from reward_kit import load_functions

FIXTURES = ROOT / "tests" / "fixtures"
MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
CPU_ITEMS = 400
CPU_MS = 5.0


def trivial_batch() -> list[str]:
    good = load_functions([str(FIXTURES / "hostile.py")])["good"]
    items = [{"messages": MESSAGES, "ground_truth": "4"} for _ in range(1000)]

    def in_process() -> float:
        start = time.perf_counter()
        for item in items:
            good(item["messages"], item["ground_truth"])
        return (time.perf_counter() - start) * 1000

    with rk_serve(str(FIXTURES / "hostile.py"), "--workers", "2") as url, httpx.Client() as client:
        body = {"items": items, "function": "good"}
        client.post(f"{url}/batch_evaluate", json=body)  # warm-up

        def over_http() -> float:
            start = time.perf_counter()
            response = client.post(f"{url}/batch_evaluate", json=body)
            assert all(r["status"] == "ok" for r in response.json()["results"])
            return (time.perf_counter() - start) * 1000

        served, _ = median_of(over_http)
    local, _ = median_of(in_process)
    return [
        "### (a) `/batch_evaluate`, 1,000 trivial items",
        "",
        table(
            ["path", "ms per 1,000 items (median)", "ratio"],
            [
                ["in-process loop (baseline)", f"{local:.2f}", "1.00x"],
                [
                    "rk-serve `/batch_evaluate`, 2 workers, HTTP round trip",
                    f"{served:.2f}",
                    f"{served / local:.2f}x",
                ],
            ],
        ),
        "",
        "The served figure includes JSON over HTTP, validation, shipping chunks to the worker "
        "processes and back, and building 1,000 `Message` lists in the workers.",
    ]


def cpu_bound() -> list[str]:
    burn = load_functions([str(FIXTURES / "cpu_rewards.py")])["burn"]
    items = [{"messages": MESSAGES, "ms": CPU_MS} for _ in range(CPU_ITEMS)]
    cores = len(os.sched_getaffinity(0))

    def sequential() -> float:
        start = time.perf_counter()
        for item in items:
            burn(item["messages"], ms=item["ms"])
        return CPU_ITEMS / (time.perf_counter() - start)

    health_ms: list[float] = []
    with rk_serve(str(FIXTURES / "cpu_rewards.py")) as url, httpx.Client() as client:
        body = {"items": items}
        client.post(f"{url}/batch_evaluate", json=body, timeout=120)  # warm-up

        def served() -> float:
            stop = threading.Event()

            def probe() -> None:
                with httpx.Client() as prober:
                    while not stop.is_set():
                        start = time.perf_counter()
                        prober.get(f"{url}/health")
                        health_ms.append((time.perf_counter() - start) * 1000)
                        time.sleep(0.01)

            thread = threading.Thread(target=probe)
            thread.start()
            start = time.perf_counter()
            response = client.post(f"{url}/batch_evaluate", json=body, timeout=120)
            elapsed = time.perf_counter() - start
            stop.set()
            thread.join()
            assert all(r["status"] == "ok" for r in response.json()["results"])
            return CPU_ITEMS / elapsed

        pooled, _ = median_of(served)
    baseline, _ = median_of(sequential)
    speedup = pooled / baseline
    p99 = percentile(health_ms, 99)
    return [
        f"### (b) a ~{CPU_MS:g} ms CPU-bound reward, {CPU_ITEMS} items per batch ({cores} cores)",
        "",
        table(
            ["path", "items/s (median)", "ratio"],
            [
                ["sequential in-process loop (baseline)", f"{baseline:.0f}", "1.00x"],
                [
                    f"rk-serve `/batch_evaluate`, {cores} workers",
                    f"{pooled:.0f}",
                    f"{speedup:.2f}x (goal >= 1.8x on 2 cores: "
                    f"{'met' if speedup >= 1.8 else 'NOT met'})",
                ],
            ],
        ),
        "",
        "### (c) `/health` latency while (b) runs",
        "",
        table(
            ["probes", "p50 ms", "p99 ms", "max ms", "goal"],
            [
                [
                    len(health_ms),
                    f"{percentile(health_ms, 50):.1f}",
                    f"{p99:.1f}",
                    f"{max(health_ms):.1f}",
                    f"p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'}",
                ]
            ],
        ),
    ]


def main() -> None:
    print(f"## Engine and server (each figure: median of {RUNS} runs)\n")
    print("\n".join(trivial_batch()))
    print()
    print("\n".join(cpu_bound()))


if __name__ == "__main__":
    main()
