"""Helpers shared by the benchmarks: a real rk-serve subprocess, medians, markdown tables."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("RK_BENCH_RUNS", "5"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a server command until the block ends; yields its URL once GET /health answers 200."""
    process = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def rk_serve(*args: str, env: dict[str, str] | None = None) -> AbstractContextManager[str]:
    """Run `rk-serve ARGS` on a free loopback port until the block ends; yields the base URL."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "rk-serve"),
        *args,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return serving(command, port, env)


def median_of(measure: Callable[[], float], runs: int = RUNS) -> tuple[float, list[float]]:
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
