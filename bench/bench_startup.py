"""Start-up: how long rk-serve takes to be ready, and the AWS Lambda bundle's size and cold import.

(a) Server ready time: from spawning `rk-serve examples/quickstart/rewards.py` to its first
    200 on /health (the worker pool is started and has loaded the rewards by then), with the
    default workers and with `--workers 0`, against a bare FastAPI app with one constant route
    under uvicorn (same interpreter, subprocess, loopback).
(b) Lambda bundle: built with `rk build --format lambda-zip`; zipped and unzipped size against
    Lambda's 50 MB / 250 MB limits, and the time to import its handler in an isolated
    interpreter holding only the unzipped bundle, against `import fastapi` from the same bundle.

Prints markdown. RK_BENCH_RUNS (default 5) sets how many runs each median takes; runs of the
compared commands are interleaved so that machine noise hits them alike.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import ROOT, RUNS, free_port, table

QUICKSTART = "examples/quickstart/rewards.py"
BIN = Path(sys.executable).parent
KEY = "bench-key-0123456789abcdef"
MB = 1024 * 1024
# Lambda quotas (deploy/artifacts/_lambda_zip.py): direct zip upload, and unzipped with layers.
ZIPPED_LIMIT = 50 * MB
UNZIPPED_LIMIT = 250 * MB

BARE_APP = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
async def health():
    return {"status": "ok"}
"""

# Runs in `python -I -S -B` with a clean environment: argv = bundle dir, module to import.
# Prints the import time and, for the handler, the time of its first (GET /health) invocation.
DRIVER = r"""
import json, sys, time
bundle, module = sys.argv[1], sys.argv[2]
sys.path.insert(0, bundle)
started = time.perf_counter()
imported = __import__(module)
import_ms = (time.perf_counter() - started) * 1000
first_ms = None
if module == "rk_lambda":
    class Context:
        function_name = "evaluator"
        aws_request_id = "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:evaluator"
        memory_limit_in_mb = 1024
        def get_remaining_time_in_millis(self):
            return 30000
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws"}, "isBase64Encoded": False,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.on.aws",
            "domainPrefix": "abc", "requestId": "req-1", "routeKey": "$default",
            "stage": "$default", "time": "22/Nov/2026:06:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1",
                     "sourceIp": "198.51.100.7", "userAgent": "bench"},
        },
    }
    started = time.perf_counter()
    response = imported.handler(event, Context())
    first_ms = (time.perf_counter() - started) * 1000
    assert response["statusCode"] == 200, response
print(json.dumps({"import_ms": import_ms, "first_ms": first_ms, "site": "site" in sys.modules}))
"""


def healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def seconds_to_ready(command: list[str], cwd: Path = ROOT) -> float:
    """Spawn ``command`` (given ``--port``), poll /health every 5 ms, stop it; seconds to 200."""
    port = free_port()
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            while not healthy(port):
                if process.poll() is not None or time.perf_counter() - start > 60:
                    stderr.seek(0)
                    raise RuntimeError(f"{command} did not start: {stderr.read()[-2000:]!r}")
                time.sleep(0.005)
            return time.perf_counter() - start
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def server_ready() -> list[str]:
    rk_serve = [str(BIN / "rk-serve"), QUICKSTART, "--log-level", "warning"]
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "bare_app.py").write_text(BARE_APP)
        bare_app = ["bare_app:app", "--app-dir", folder, "--log-level", "warning"]
        commands = {
            "bare": [sys.executable, "-m", "uvicorn", *bare_app],
            "default": rk_serve,
            "zero": [*rk_serve, "--workers", "0"],
        }
        for command in commands.values():  # warm-up: bytecode caches and the OS page cache
            seconds_to_ready(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(RUNS):
            for name, command in commands.items():
                times[name].append(seconds_to_ready(command) * 1000)
    bare = statistics.median(times["bare"])
    cores = len(os.sched_getaffinity(0))

    def row(label: str, name: str) -> list[str]:
        value = statistics.median(times[name])
        spread = f"{min(times[name]):.0f}-{max(times[name]):.0f}"
        return [label, f"{value:.0f}", spread, f"{value / bare:.2f}x"]

    return [
        "### (a) Server ready time",
        "",
        "From spawning the server process to the first 200 on `GET /health` (polled every 5 ms "
        "over loopback). rk-serve answers /health only after its lifespan has started the worker "
        "pool and every worker has loaded the rewards, so this is the time to the first request "
        "that can be scored.",
        "",
        table(
            ["server", "ms to first 200 (median)", "min-max", "ratio"],
            [
                row("bare FastAPI app, one constant route, `python -m uvicorn` (baseline)", "bare"),
                row(f"`rk-serve {QUICKSTART}`, default workers ({cores}, one per core)", "default"),
                row(f"`rk-serve {QUICKSTART} --workers 0` (rewards in threads)", "zero"),
            ],
        ),
    ]


def build_bundle(out: Path) -> tuple[Path, float]:
    command = [str(BIN / "rk"), "build", QUICKSTART, "--format", "lambda-zip", "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return out / "evaluator.zip", time.perf_counter() - start


def isolated_import(bundle: Path, module: str) -> dict[str, float]:
    # -I: no PYTHON* variables, no user site; -S: no site-packages; -B: write no bytecode, as on
    # Lambda, whose /var/task is read-only.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", DRIVER, str(bundle), module],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "RK_API_KEYS": f"bench {KEY}"},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"import {module} from {bundle} failed:\n{result.stderr[-3000:]}")
    output: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["site"] is False, "site-packages leaked into the isolated interpreter"
    return output


def lambda_bundle() -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        zip_path, build_seconds = build_bundle(Path(folder, "build"))
        zipped = zip_path.stat().st_size
        with zipfile.ZipFile(zip_path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
            files = len(archive.infolist())
            pyc = sum(name.endswith(".pyc") for name in archive.namelist())
            archive.extractall(Path(folder, "as_shipped"))
            archive.extractall(Path(folder, "sources"))
        shipped, sources = Path(folder, "as_shipped"), Path(folder, "sources")
        # The second copy is what a bundle without bytecode would be.
        for cache in sorted(sources.rglob("__pycache__"), reverse=True):
            shutil.rmtree(cache)
        folders = {"shipped": shipped, "sources": sources}
        cases: dict[tuple[str, str], list[dict[str, float]]] = {
            (copy, module): [] for copy in folders for module in ("fastapi", "rk_lambda")
        }
        for copy, module in cases:  # warm-up: the OS page cache
            isolated_import(folders[copy], module)
        for _ in range(RUNS):
            for (copy, module), runs in cases.items():
                runs.append(isolated_import(folders[copy], module))

    def ms(copy: str, module: str, key: str = "import_ms") -> float:
        return statistics.median([run[key] for run in cases[(copy, module)]])

    sizes = table(
        ["bundle (`rk build ... --format lambda-zip`)", "size", "Lambda limit", "share of limit"],
        [
            ["zipped", f"{zipped / MB:.1f} MB", "50 MB (direct upload)",
             f"{zipped / ZIPPED_LIMIT:.0%}"],
            ["unzipped", f"{unzipped / MB:.1f} MB", "250 MB (with layers)",
             f"{unzipped / UNZIPPED_LIMIT:.0%}"],
        ],
    )  # fmt: skip
    rows = []
    for label, module, key in [
        ("`import fastapi` (baseline)", "fastapi", "import_ms"),
        ("`import rk_lambda` (the handler module)", "rk_lambda", "import_ms"),
        ("first `GET /health` invocation after that import", "rk_lambda", "first_ms"),
    ]:
        cells = [label]
        for copy in ("shipped", "sources"):
            value, base = ms(copy, module, key), ms(copy, "fastapi")
            cells += [f"{value:.0f}", f"{value / base:.2f}x" if key == "import_ms" else ""]
        rows.append(cells)
    imports = table(
        ["in `python -I -S -B`, only the unzipped bundle on sys.path",
         "ms, as shipped (with .pyc)", "ratio", "ms, sources only", "ratio"],
        rows,
    )  # fmt: skip
    return [
        "### (b) Lambda bundle",
        "",
        f"`rk build {QUICKSTART} --format lambda-zip` (reward-kit[lambda-runtime]: the app, "
        "FastAPI, Mangum, orjson, prometheus-client; and the rewards; installed for "
        "manylinux2014_x86_64 / CPython 3.11): "
        f"{files:,} files, {pyc} .pyc. The build took {build_seconds:.0f} s (one run; it depends "
        "on pip's cache and the network, so it is not a benchmark figure).",
        "",
        sizes,
        "",
        f"Goals: at most 8 MB zipped ({'met' if zipped <= 8 * MB else 'NOT met'}) and a cold "
        f"import of the handler under 0.5 s as shipped "
        f"({'met' if ms('shipped', 'rk_lambda') < 500 else 'NOT met'}).",
        "",
        "Cold import: a fresh interpreter with no site-packages and a clean environment imports "
        "the handler from the unzipped bundle, as the Lambda init phase does (`RK_API_KEYS` "
        "set, workers 0). The baseline is `import fastapi` from the same bundle in the same kind "
        "of interpreter: the framework floor any FastAPI handler pays, so the ratio is what "
        "reward-kit, mangum and the rewards add. The bundle ships hash-based bytecode, because "
        "Lambda's /var/task is read-only and a bundle of sources only (the right-hand columns, "
        "the same bundle with its `__pycache__` removed) is compiled again at every cold start. "
        "Interpreter start-up itself is not included (it is the same for both).",
        "",
        imports,
        "",
        "Shipping bytecode takes the handler's cold import from "
        f"{ms('sources', 'rk_lambda'):.0f} ms (sources only) to "
        f"{ms('shipped', 'rk_lambda'):.0f} ms "
        f"({ms('sources', 'rk_lambda') / ms('shipped', 'rk_lambda'):.1f}x faster).",
    ]


def main() -> None:
    lines = [
        f"## Start-up: server ready time and the Lambda bundle (median of {RUNS} runs)",
        "",
        *server_ready(),
        "",
        *lambda_bundle(),
        "",
        "Command: `python bench/bench_startup.py` (or `make bench`, which runs every "
        "bench/bench_*.py); `RK_BENCH_RUNS=N` sets the number of runs.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
