"""Environment sessions over HTTP: creation latency, step round trip, memory per session, and
sessions/s at capacity. Prints markdown.

Also the pipe alone: the server's ``SessionProcess.request`` to a session process in this
process's event loop (no HTTP), against a bare echo over the same kind of socket pair.

    .venv/bin/python bench/bench_envs.py

A real `rk-serve examples/environments/guess_number.py` subprocess on 127.0.0.1 with an API
key, driven through the SDK's EnvClient / AsyncEnvClient (auth, retries, JSON parsing all
included: these are what a trainer sees). Baseline: `GET /health` through the same client's
connection, the floor of any request to this server.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable

import psutil

sys.path.insert(0, os.path.dirname(__file__))
from _common import ROOT, RUNS, free_port, percentile, serving, table

from reward_kit import Overloaded
from reward_kit.env import ForkServer
from reward_kit.sdk.env import AsyncEnvClient, EnvClient

KEY = "bench-env-key-0123456789abcdef"
GUESS = str(ROOT / "examples" / "environments" / "guess_number.py")
HELD = 64  # sessions held open for the memory figure (the prototype: 64)
CAPACITY = 16  # --env-max-sessions for the throughput figure
PIPE_CALLS = 3000  # round trips per pipe run


def timed_ms(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: connection, forkserver
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def tree_pss_mb(port: int) -> float:
    """PSS of the server on ``port`` and every process under it (forkserver, sessions)."""
    server = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if "rk-serve" in " ".join(p.info["cmdline"] or []) and str(port) in p.info["cmdline"]
    )
    total = 0
    for process in [server, *server.children(recursive=True)]:
        try:
            total += process.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def server(port: int, **env: str) -> object:
    command = [
        str(os.path.join(os.path.dirname(sys.executable), "rk-serve")),
        GUESS,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return serving(command, port, {"RK_API_KEYS": KEY, **env})


def latency_and_memory() -> tuple[str, str]:
    port = free_port()
    with (
        server(port, RK_ENV_MAX_SESSIONS=str(HELD + 8)) as url,  # type: ignore[attr-defined]
        EnvClient(url, auth=KEY) as client,
    ):
        health = timed_ms(lambda: client._send(_get("/health")), 200)
        created: list[float] = []
        closed: list[float] = []
        for _ in range(60):
            start = time.perf_counter()
            session = client.session("guess_number", seed=1)
            created.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            session.close()
            closed.append((time.perf_counter() - start) * 1000)
        steps = []
        for _ in range(25):  # max_steps is 10: 8 steps a session, n=0 never ends it
            with client.session("guess_number", seed=1) as session:
                for _ in range(8):
                    start = time.perf_counter()
                    session.step([("guess", {"n": 0})])
                    steps.append((time.perf_counter() - start) * 1000)
        time.sleep(0.5)
        idle = tree_pss_mb(port)
        held = [client.session("guess_number", seed=s) for s in range(HELD)]
        time.sleep(0.5)
        loaded = tree_pss_mb(port)
        for session in held:
            session.close()
    base = statistics.median(health)
    rows = [
        ["`GET /health` (baseline)", f"{base:.2f}", f"{percentile(health, 90):.2f}", "1.0x"],
    ]
    for name, values in (
        ("create a session (`POST .../sessions`: fork, `reset`)", created),
        ("one step, one tool call (`POST .../step`)", steps),
        ("close a session (`DELETE`)", closed),
    ):
        median = statistics.median(values)
        rows.append(
            [name, f"{median:.2f}", f"{percentile(values, 90):.2f}", f"{median / base:.1f}x"]
        )
    latency = table(["request", "median ms", "p90 ms", "vs /health"], rows)
    memory = table(
        ["server process tree", "PSS MB"],
        [
            ["no session open", f"{idle:.1f}"],
            [f"{HELD} sessions open", f"{loaded:.1f}"],
            ["per session", f"{(loaded - idle) / HELD:.2f}"],
        ],
    )
    return latency, memory


async def _churn(url: str, clients: int, seconds: float) -> tuple[int, int]:
    """``clients`` clients each open, step and close sessions for ``seconds``; returns
    (sessions completed, 429 refusals). A refused client waits 10 ms and tries again: the
    server's Retry-After is whole seconds (at least 1), far longer than a churning slot stays
    taken."""
    done = refused = 0

    async def client_loop() -> None:
        nonlocal done, refused
        async with AsyncEnvClient(url, auth=KEY, max_retries=0) as client:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                try:
                    session = await client.session("guess_number", seed=done)
                except Overloaded:
                    refused += 1
                    await asyncio.sleep(0.01)
                    continue
                async with session:
                    await session.step([("guess", {"n": 50})])
                done += 1

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return done, refused


def throughput() -> str:
    port = free_port()
    rows = []
    with server(port, RK_ENV_MAX_SESSIONS=str(CAPACITY)) as url:  # type: ignore[attr-defined]
        for clients in (CAPACITY, 2 * CAPACITY):
            rates, refusals = [], []
            for _ in range(RUNS):
                start = time.perf_counter()
                done, refused = asyncio.run(_churn(url, clients, 3.0))
                rates.append(done / (time.perf_counter() - start))
                refusals.append(refused / (time.perf_counter() - start))
            rows.append(
                [
                    f"{clients} clients: create, 1 step, close",
                    f"{statistics.median(rates):.0f}",
                    f"{min(rates):.0f}-{max(rates):.0f}",
                    f"{statistics.median(refusals):.0f}",
                ]
            )
    return table(["workload", "sessions/s (median)", "min-max", "429s/s"], rows)


async def _pipe_us() -> float:
    """One tool call over the pipe, as a step makes it (µs, mean of PIPE_CALLS)."""
    forkserver = ForkServer(targets=[GUESS], memory_limit_mb=None)
    await forkserver.start()
    try:
        process = await forkserver.spawn("guess_number")
        await process.request({"op": "reset", "task": None, "seed": 1}, 5.0)
        call = {"op": "call", "name": "guess", "arguments": '{"n": 0}'}
        for _ in range(300):
            await process.request(call, 5.0)
        start = time.perf_counter()
        for _ in range(PIPE_CALLS):
            await process.request(call, 5.0)
        elapsed = time.perf_counter() - start
        process.kill()
    finally:
        await forkserver.close()
    return elapsed / PIPE_CALLS * 1e6


async def _echo_us() -> float:
    """The floor: the same frame echoed by a forked process doing nothing else (µs)."""
    header = struct.Struct(">I")
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the echo: one recv of the frame, one send of it
        ours.close()
        while frame := theirs.recv(65536):
            theirs.sendall(frame)
        os._exit(0)
    theirs.close()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    body = b'{"op":"call","name":"guess","arguments":"{\\"n\\": 0}"}'
    frame = header.pack(len(body)) + body

    async def round_trip() -> None:
        writer.write(frame)
        (size,) = header.unpack(await reader.readexactly(header.size))
        await reader.readexactly(size)

    for _ in range(300):
        await round_trip()
    start = time.perf_counter()
    for _ in range(PIPE_CALLS):
        await round_trip()
    elapsed = time.perf_counter() - start
    writer.close()
    await writer.wait_closed()  # the echo sees end-of-file and exits
    os.waitpid(pid, 0)
    return elapsed / PIPE_CALLS * 1e6


def pipe() -> str:
    pipe_runs, echo_runs = [], []
    for _ in range(RUNS):  # interleaved, so both see the same load
        echo_runs.append(asyncio.run(_echo_us()))
        pipe_runs.append(asyncio.run(_pipe_us()))
    echo, piped = statistics.median(echo_runs), statistics.median(pipe_runs)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    rows = [
        ["bare echo of the frame (floor)", f"{echo:.0f}", f"{min(echo_runs):.0f}", "1.0x"],
        [
            "tool call: `SessionProcess.request` to `guess(n)`",
            f"{piped:.0f}",
            f"{min(pipe_runs):.0f}",
            f"{piped / echo:.1f}x",
        ],
    ]
    return (
        table(["round trip", "median µs", "best run µs", "vs echo"], rows)
        + f"\n\nLoad average while measuring (1, 5, 15 min): {load} on "
        + f"{len(os.sched_getaffinity(0))} cores."
    )


def _get(path: str) -> object:
    from reward_kit.sdk._core import Request

    return Request("GET", path)


def main() -> None:
    latency, memory = latency_and_memory()
    print("## Environment sessions: creation, step round trip, memory, sessions/s at capacity\n")
    print(
        "`rk-serve examples/environments/guess_number.py` with an API key, on 127.0.0.1; "
        "the SDK's EnvClient (auth, retries and parsing included). Each session is a process "
        "forked from the server's forkserver.\n"
    )
    print("### (a) Latency of one request (60 creations and closes, 200 steps)\n")
    print(latency + "\n")
    print(
        f"### (b) Memory: PSS of the server and all its processes, idle and with {HELD} "
        "sessions open\n"
    )
    print(memory + "\n")
    print(
        f"### (c) Sessions/s at capacity: `--env-max-sessions {CAPACITY}`, as many asyncio "
        "clients (every slot always taken) and twice as many (half of them refused with 429 at "
        "any moment, retrying after 10 ms); 3 s per run\n"
    )
    print(throughput() + "\n")
    print(
        f"### (d) The pipe alone: one tool call from the server's event loop to a session "
        f"process and back (no HTTP), {PIPE_CALLS} calls a run, against a bare echo\n"
    )
    print(pipe() + "\n")
    print("Command: `python bench/bench_envs.py`.")


if __name__ == "__main__":
    main()
