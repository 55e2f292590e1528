"""Engine and server throughput, each against a baseline measured in the same run.

(a) /batch_evaluate of 1,000 trivial items vs the same function called in-process in a loop.
(b) a ~5 ms CPU-bound reward: items/s through the server's pool vs a sequential in-process loop.
(c) /health p99 latency while (b) runs.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable

import httpx
import orjson
import psutil

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
    body = {"items": items, "function": "good"}

    def in_process() -> float:
        start = time.perf_counter()
        for item in items:
            good(item["messages"], item["ground_truth"])
        return (time.perf_counter() - start) * 1000

    with rk_serve(str(FIXTURES / "hostile.py"), "--workers", "2") as url, httpx.Client() as client:

        def over_http() -> float:
            # A plain httpx client: the standard library's json both ways.
            start = time.perf_counter()
            response = client.post(f"{url}/batch_evaluate", json=body)
            assert all(r["status"] == "ok" for r in response.json()["results"])
            return (time.perf_counter() - start) * 1000

        def over_http_orjson() -> float:
            # As reward-kit's SDK sends and reads a batch: orjson both ways.
            start = time.perf_counter()
            response = client.post(
                f"{url}/batch_evaluate",
                content=orjson.dumps(body),
                headers={"content-type": "application/json"},
            )
            assert all(r["status"] == "ok" for r in orjson.loads(response.content)["results"])
            return (time.perf_counter() - start) * 1000

        paths = {"local": in_process, "http": over_http, "orjson": over_http_orjson}
        for measure in paths.values():  # warm-up: connections, workers, caches
            measure()
        runs: dict[str, list[float]] = {name: [] for name in paths}
        # Interleaved, so drift in the shared VM's speed hits every path alike.
        for _ in range(RUNS):
            for name, measure in paths.items():
                runs[name].append(measure())
        cpu = cpu_per_call(url, {"served": over_http, "in-process": in_process})
    local, served, served_orjson = (statistics.median(runs[name]) for name in paths)
    ratio = served / local
    return [
        "### (a) `/batch_evaluate`, 1,000 trivial items",
        "",
        table(
            ["path", "ms per 1,000 items (median)", "ratio"],
            [
                ["in-process loop (baseline)", f"{local:.2f}", "1.00x"],
                [
                    "rk-serve `/batch_evaluate`, 2 workers, HTTP round trip (httpx, stdlib json)",
                    f"{served:.2f}",
                    f"{ratio:.2f}x (goal <= 2x: {'met' if ratio <= 2 else 'NOT met'})",
                ],
                [
                    "same, the client encoding and decoding with orjson (as the SDK does)",
                    f"{served_orjson:.2f}",
                    f"{served_orjson / local:.2f}x",
                ],
            ],
        ),
        "",
        "The in-process loop calls the reward as its author does: each item's dicts become "
        "`Message`s and the reward builds its `EvaluateResult`. The served figure adds the "
        "client's JSON, HTTP, validating each item, shipping chunks to the 2 worker processes "
        "and back, each item's containment and deadline in the worker (docs/security.md), and "
        "the answer's JSON; on 2 cores the client, the server and both workers share them.",
        "",
        f"CPU time per call ({CPU_CALLS} calls, each process as the kernel counts it):",
        "",
        cpu_table(cpu),
    ]


CPU_CALLS = 40


def cpu_per_call(url: str, calls: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Milliseconds of CPU per call of each of ``calls``: (server, its child processes, this
    process), as the kernel counts them, so that on a shared machine it is the work that is
    measured, not the waiting."""
    port = int(url.rsplit(":", 1)[1])
    pid = next(c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port
               and c.status == psutil.CONN_LISTEN)  # fmt: skip
    server = psutil.Process(pid)

    def times() -> list[float]:
        children = server.children(recursive=True)
        own = sum(server.cpu_times()[:2])
        return [own, sum(sum(child.cpu_times()[:2]) for child in children), time.process_time()]

    split = {}
    for name, call in calls.items():
        before = times()
        for _ in range(CPU_CALLS):
            call()
        split[name] = [(b - a) * 1000 / CPU_CALLS for a, b in zip(before, times(), strict=True)]
    return split


def cpu_table(cpu: dict[str, list[float]]) -> str:
    base = sum(cpu["in-process"])
    served = cpu["served"]
    return table(
        ["call", "server process (event loop, pool threads)", "worker processes",
         "client process", "total", "ratio"],
        [
            ["in-process loop (baseline)", "", "", f"{base:.1f} ms", f"{base:.1f} ms", "1.00x"],
            ["`/batch_evaluate` (httpx, stdlib json)", *(f"{v:.1f} ms" for v in served),
             f"{sum(served):.1f} ms", f"{sum(served) / base:.2f}x"],
        ],
    )  # fmt: skip


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
