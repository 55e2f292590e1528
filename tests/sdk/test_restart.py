"""The SDK against an evaluator restarted in the middle of a large batch: killed (SIGKILL) or
stopped (SIGTERM), then started again on the same port. Every item comes back once, in its
place, with its own result; the old server leaves no process behind."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from reward_kit.sdk import AsyncEvaluatorClient, EvaluatorClient, ItemResult, make_item

from ..conftest import FIXTURES, free_port, wait_for_health
from ..fixtures.tagged import expected_score

pytestmark = pytest.mark.slow

TAGGED = str(FIXTURES / "tagged.py")
ITEMS = 3000
ITEM_MS = 2  # each item sleeps this long in its worker: ~3 s of work on 2 workers
CHUNK_ITEMS = 20  # 150 requests
CONCURRENCY = 4
DOWNTIME = 1.5  # the new server starts this long after the old one exited: a ~2 s outage
KILL_AFTER = 40  # batch answers before the restart: about a quarter of the run


class Server:
    """rk-serve on a fixed port, so a restarted one is found where the client looks."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            str(Path(sys.executable).parent / "rk-serve"),
            TAGGED,
            "--port",
            str(self.port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_health(self.url, self.process)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


class Restart:
    """Restarts the server from another thread once KILL_AFTER batch requests were answered."""

    def __init__(self, server: Server, signum: signal.Signals) -> None:
        self.server = server
        self.signum = signum
        self.answers: list[float] = []  # when each batch answer arrived
        self.failures: Counter[str] = Counter()  # what the retried attempts met
        self.lock = threading.Lock()
        self.due = threading.Event()
        self.killed_at = self.back_at = 0.0
        self.outlived: list[psutil.Process] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run)

    def answered(self, request: httpx.Request, response: httpx.Response) -> None:
        if request.url.path.startswith("/batch_evaluate") and response.status_code == 200:
            with self.lock:
                self.answers.append(time.monotonic())
                if len(self.answers) >= KILL_AFTER:
                    self.due.set()

    def _run(self) -> None:
        try:
            if not self.due.wait(timeout=60):
                raise AssertionError("the batch never got going")
            old = self.server.process
            assert old is not None
            tree = psutil.Process(old.pid).children(recursive=True)
            self.killed_at = time.monotonic()
            old.send_signal(self.signum)
            old.wait(timeout=30)
            time.sleep(DOWNTIME)
            self.server.start()
            self.back_at = time.monotonic()
            # The old server's fork server and workers go with it, even after a SIGKILL.
            _, self.outlived = psutil.wait_procs(tree, timeout=15)
        except BaseException as error:
            self.error = error

    def served_by_both(self) -> tuple[int, int]:
        before = sum(t < self.killed_at for t in self.answers)
        after = sum(t > self.back_at for t in self.answers)
        return before, after


class Transport(httpx.HTTPTransport):
    def __init__(self, restart: Restart) -> None:
        super().__init__()
        self.restart = restart

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except httpx.TransportError as error:
            self.restart.failures[type(error).__name__] += 1
            raise
        self.restart.answered(request, response)
        return response


class AsyncTransport(httpx.AsyncHTTPTransport):
    def __init__(self, restart: Restart) -> None:
        super().__init__()
        self.restart = restart

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as error:
            self.restart.failures[type(error).__name__] += 1
            raise
        self.restart.answered(request, response)
        return response


def run_batch(mode: str, url: str, restart: Restart) -> list[ItemResult]:
    items = [
        make_item([{"role": "assistant", "content": "4"}], kwargs={"id": i, "ms": ITEM_MS})
        for i in range(ITEMS)
    ]
    options: dict[str, Any] = {
        "max_batch_items": CHUNK_ITEMS,
        "max_concurrency": CONCURRENCY,
        # max_retries is left at its default (5: 7.75 s or more of backoff), which must ride
        # out a restart.
        "timeout": 30,
    }
    if mode == "sync":
        with EvaluatorClient(url, transport=Transport(restart), **options) as client:
            return client.batch_evaluate(items, function="tagged")

    async def run() -> list[ItemResult]:
        transport = AsyncTransport(restart)
        async with AsyncEvaluatorClient(url, transport=transport, **options) as client:
            return await client.batch_evaluate(items, function="tagged")

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_batch_rides_out_a_server_restart(mode: str, signum: signal.Signals) -> None:
    server = Server()
    server.start()
    restart = Restart(server, signum)
    restart.thread.start()
    start = time.monotonic()
    try:
        results = run_batch(mode, server.url, restart)
    finally:
        restart.due.set()  # never leave the thread waiting if the batch failed early
        restart.thread.join(timeout=60)
        server.close()
    elapsed = time.monotonic() - start
    assert restart.error is None, restart.error
    before, after = restart.served_by_both()
    figures = {
        "seconds": round(elapsed, 1),
        "outage_s": round(restart.back_at - restart.killed_at, 2),
        "answers_before_restart": before,
        "answers_after_restart": after,
        "answers": len(restart.answers),
        "transport_errors": dict(restart.failures),
    }

    # One result per item, in input order; each either its own score or an explicit error.
    assert [r.index for r in results] == list(range(ITEMS))
    scored = errored = 0
    for i, result in enumerate(results):
        if result.ok:
            assert result.result is not None
            assert result.result.reason == f"id={i}", (i, result)
            assert result.score == expected_score(i), (i, result)
            scored += 1
        else:
            assert result.error is not None, (i, result)
            assert result.error.code, (i, result)
            assert result.result is None, (i, result)
            assert result.score is None, (i, result)
            errored += 1
    figures.update(scored=scored, errored=errored)
    print(figures)
    # The restart really happened mid-run, and the retries rode it out: nothing failed.
    assert before >= KILL_AFTER, figures
    assert after > 0, figures
    assert scored == ITEMS, figures
    assert not restart.outlived, f"the old server left {restart.outlived} behind"
