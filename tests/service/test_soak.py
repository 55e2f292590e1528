"""Soak: a minute of mixed /evaluate and /batch_evaluate traffic, hostile items included, against
a real rk-serve. Nothing is lost, nothing is misreported, and nothing leaks: memory, worker
processes, file descriptors."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import pytest

from ..conftest import FIXTURES, HOSTILE, rk_serve
from ..fixtures.tagged import expected_score

pytestmark = pytest.mark.slow

TAGGED = str(FIXTURES / "tagged.py")
# The issue asks for a 60 s soak; a shorter one would not show a slow leak.
SOAK_SECONDS = 60.0
WARMUP_SECONDS = 6.0
CLIENTS = 8
WORKERS = 2
MEMORY_LIMIT_MB = 1024
# Thresholds. RSS of the server's process tree (~180 MiB) may grow under 20% from the warmed-up
# figure: measured growth is under 1%, and a leak of a few hundred bytes per item (~10^5 items a
# run) fails it. The server's file descriptors may differ by a few (measured: none); a pipe or a
# socket leaked per request or per worker restart (~10^4 and ~10^2 a run) fails it.
RSS_GROWTH_LIMIT = 0.20
FD_TOLERANCE = 4

MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


@dataclass(frozen=True)
class Kind:
    """One kind of batch item: how to ask for it and what its slot must say."""

    function: str
    kwargs: dict[str, Any]
    status: str
    code: str | None
    # Timeouts cost a worker a full deadline and crashes a worker restart: they are rationed,
    # across all clients, so the load stays moderate on a 2-core machine. Seconds between two.
    every: float = 0.0


BATCH_KINDS: dict[str, Kind] = {
    "good": Kind("tagged", {}, "ok", None),
    "raise": Kind("tagged", {"behaviour": "raise"}, "error", "function_error"),
    "hog": Kind("tagged", {"behaviour": "hog"}, "crashed", "crashed"),
    "exit": Kind("tagged", {"behaviour": "exit"}, "crashed", "crashed", every=0.5),
    "segfault": Kind("tagged", {"behaviour": "segfault"}, "crashed", "crashed", every=0.5),
    "spin": Kind("tagged", {"behaviour": "spin"}, "timeout", "timeout", every=3.0),
    "sleep": Kind("tagged", {"behaviour": "sleep"}, "timeout", "timeout", every=3.0),
    "wrong_type": Kind("wrong_type", {}, "error", "function_error"),
    "unknown": Kind("no_such_function", {}, "invalid", "unknown_function"),
}
BATCH_WEIGHTS = {
    "good": 200,
    "raise": 4,
    "hog": 2,
    "exit": 1,
    "segfault": 1,
    "spin": 1,
    "sleep": 1,
    "wrong_type": 2,
    "unknown": 1,
}


@dataclass(frozen=True)
class Single:
    """A single /evaluate call of a hostile function, and its documented answer."""

    path: str
    body: dict[str, Any]
    status: int
    code: str
    needle: str
    every: float = 0.0


RAISES = Single("raises", {}, 500, "function_error", "ZeroDivisionError")
SINGLES = [
    RAISES,
    Single("spin", {}, 504, "timeout", "deadline", every=3.0),
    Single("sleeper", {}, 504, "timeout", "deadline", every=3.0),
    Single("exits", {}, 500, "crashed", "exited with code 1", every=0.5),
    Single("segfault", {}, 500, "crashed", "SIGSEGV", every=0.5),
    Single("hog", {}, 500, "crashed", f"memory limit of {MEMORY_LIMIT_MB} MiB"),
    Single("wrong_type", {}, 500, "function_error", "returned str"),
    Single("tagged", {"kwargs": {"behaviour": "raise"}}, 500, "function_error", "asked to fail"),
    # SIGALRM blocked: the soft deadline cannot fire and the parent kills the worker at 2.5 s.
    Single("tagged?timeout=1", {"kwargs": {"behaviour": "block"}}, 504, "timeout", "killed", 8.0),
]


class Rations:
    """At most one of each rationed kind per ``every`` seconds, across all client threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def take(self, name: str, every: float) -> bool:
        if every <= 0:
            return True
        with self._lock:
            now = time.monotonic()
            if now - self._last.get(name, -1e9) < every:
                return False
            self._last[name] = now
            return True


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)


class Driver:
    """CLIENTS threads, each with its own connection pool, sending a seeded random mix."""

    def __init__(self, url: str, tally: Tally, rations: Rations) -> None:
        self.url = url
        self.tally = tally
        self.rations = rations
        self._ids = iter(range(10**9))
        self._ids_lock = threading.Lock()

    def next_id(self) -> int:
        with self._ids_lock:
            return next(self._ids)

    def run(self, seconds: float, seed: int) -> None:
        stop = time.monotonic() + seconds
        errors: list[BaseException] = []

        def client(index: int) -> None:
            rng = random.Random(seed * 1000 + index)
            try:
                with httpx.Client(base_url=self.url, timeout=60) as http:
                    while time.monotonic() < stop:
                        self.one_request(http, rng)
            except BaseException as error:  # a lost response: reported, never swallowed
                errors.append(error)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 120)
        assert not any(t.is_alive() for t in threads), "a client thread is stuck"
        assert not errors, errors

    def one_request(self, http: httpx.Client, rng: random.Random) -> None:
        roll = rng.random()
        if roll < 0.45:
            self.batch(http, rng)
        elif roll < 0.9:
            self.good_single(http)
        else:
            self.hostile_single(http, rng)

    def batch(self, http: httpx.Client, rng: random.Random) -> None:
        kinds: list[str] = []
        for _ in range(rng.randint(1, 40)):
            name = rng.choices(list(BATCH_WEIGHTS), weights=list(BATCH_WEIGHTS.values()))[0]
            if not self.rations.take(f"batch {name}", BATCH_KINDS[name].every):
                name = "good"
            kinds.append(name)
        ids = [self.next_id() for _ in kinds]
        items = [
            {
                "messages": MESSAGES,
                "function": BATCH_KINDS[kind].function,
                "kwargs": {"id": item_id, **BATCH_KINDS[kind].kwargs},
            }
            for kind, item_id in zip(kinds, ids, strict=True)
        ]
        response = http.post("/batch_evaluate?timeout=1", json={"items": items})
        self.tally.requests[f"batch {response.status_code}"] += 1
        if response.status_code != 200:
            self.tally.problem(f"batch answered {response.status_code}: {response.text[:300]}")
            return
        results = response.json()["results"]
        if len(results) != len(items):
            self.tally.problem(f"batch of {len(items)} answered {len(results)} results")
            return
        for position, (kind, item_id, result) in enumerate(zip(kinds, ids, results, strict=True)):
            self.tally.items[kind] += 1
            self.check_item(position, BATCH_KINDS[kind], item_id, result)

    def check_item(self, position: int, kind: Kind, item_id: int, result: dict[str, Any]) -> None:
        where = f"item {position} (id {item_id}, {kind.function} {kind.kwargs})"
        if result.get("index") != position:
            self.tally.problem(f"{where}: index {result.get('index')}")
        if result.get("status") != kind.status:
            self.tally.problem(f"{where}: {result.get('status')} {result.get('error')}")
            return
        if kind.status == "ok":
            body = result["result"]
            if body["reason"] != f"id={item_id}" or body["score"] != expected_score(item_id):
                self.tally.problem(f"{where}: wrong result {body}")
            return
        # An error is an error, with its code and message, never a result with a 0 in it.
        error = result.get("error") or {}
        if result.get("result") is not None or error.get("code") != kind.code:
            self.tally.problem(f"{where}: {result}")
        if not error.get("message"):
            self.tally.problem(f"{where}: no error message")

    def good_single(self, http: httpx.Client) -> None:
        item_id = self.next_id()
        response = http.post(
            "/evaluate/tagged", json={"messages": MESSAGES, "kwargs": {"id": item_id}}
        )
        self.tally.requests[f"single tagged {response.status_code}"] += 1
        body = response.json()
        if response.status_code != 200 or body.get("reason") != f"id={item_id}":
            self.tally.problem(f"good single {item_id}: {response.status_code} {body}")
        elif body["score"] != expected_score(item_id) or body["function"] != "tagged":
            self.tally.problem(f"good single {item_id}: {body}")

    def hostile_single(self, http: httpx.Client, rng: random.Random) -> None:
        single = rng.choice(SINGLES)
        if not self.rations.take(f"single {single.path}", single.every):
            single = RAISES  # an error that costs nothing
        body = {"messages": MESSAGES, **single.body}
        response = http.post(f"/evaluate/{single.path}", json=body)
        self.tally.requests[f"single {single.path} {response.status_code}"] += 1
        payload = response.json()
        error = payload.get("error") or {}
        if (
            response.status_code != single.status
            or set(payload) != {"error"}  # no score next to the error
            or error.get("code") != single.code
            or single.needle not in error.get("message", "")
        ):
            self.tally.problem(f"single {single.path}: {response.status_code} {payload}")


def server_process(url: str) -> psutil.Process:
    """The rk-serve child of this test process listening on ``url``'s port."""
    port = url.rsplit(":", 1)[1]
    for child in psutil.Process().children():
        command = child.cmdline()
        if "--port" in command and command[command.index("--port") + 1] == port:
            return child
    raise AssertionError(f"no rk-serve child for {url}")


def workers_of(server: psutil.Process) -> list[psutil.Process]:
    """Live worker processes: on Linux they are forked by the multiprocessing fork server."""
    workers: list[psutil.Process] = []
    for child in server.children():
        with _gone():
            if "multiprocessing.forkserver" in " ".join(child.cmdline()):
                workers.extend(w for w in child.children() if _alive(w))
    return workers


def _alive(process: psutil.Process) -> bool:
    with _gone():
        return process.status() != psutil.STATUS_ZOMBIE
    return False


def _gone() -> contextlib.suppress:
    """Ignore psutil's errors for a process that exited while we looked at it."""
    return contextlib.suppress(psutil.Error)


def tree_rss(server: psutil.Process) -> int:
    total = 0
    for process in [server, *server.children(recursive=True)]:
        with _gone():
            total += process.memory_info().rss
    return total


def settle(url: str, server: psutil.Process) -> None:
    """Wait for an idle server with exactly WORKERS live workers (a crashed one is replaced)."""
    deadline = time.monotonic() + 30
    while True:
        idle = httpx.get(f"{url}/health").json()["in_flight"] == 0
        if idle and len(workers_of(server)) == WORKERS:
            break
        assert time.monotonic() < deadline, (idle, workers_of(server))
        time.sleep(0.1)
    time.sleep(1.0)  # closed client connections reach the server; a stray replacement shows
    assert len(workers_of(server)) == WORKERS


class Watcher:
    """Samples the server's process tree while traffic runs: every process it ever had (to
    check none outlives it) and the largest number of live workers at once."""

    def __init__(self, server: psutil.Process) -> None:
        self.server = server
        self.seen: dict[int, psutil.Process] = {}
        self.most_workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with _gone():
                for process in self.server.children(recursive=True):
                    self.seen.setdefault(process.pid, process)
                self.most_workers = max(self.most_workers, len(workers_of(self.server)))

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(label: str, figures: dict[str, Any], step: Callable[[], None]) -> None:
    start = time.monotonic()
    step()
    figures[label] = round(time.monotonic() - start, 1)


def test_a_minute_of_mixed_traffic_loses_nothing_and_leaks_nothing() -> None:
    own_fds = psutil.Process().num_fds()
    figures: dict[str, Any] = {}
    tally = Tally()
    rations = Rations()
    args = (HOSTILE, TAGGED, "--workers", str(WORKERS), "--memory-limit-mb", str(MEMORY_LIMIT_MB))
    with rk_serve(*args, "--log-level", "error") as url:
        server = server_process(url)
        driver = Driver(url, tally, rations)
        with Watcher(server) as watcher:
            timed("warmup_s", figures, lambda: driver.run(WARMUP_SECONDS, seed=1))
            settle(url, server)
            warm_rss, warm_fds = tree_rss(server), server.num_fds()
            # What the OOM killer does: kill a worker while it is idle. pebble then breaks its
            # pool; the engine must replace it, and the old pool's worker and pipes must go.
            os.kill(workers_of(server)[0].pid, signal.SIGKILL)
            time.sleep(0.5)
            timed("soak_s", figures, lambda: driver.run(SOAK_SECONDS, seed=2))
            settle(url, server)
            end_rss, end_fds = tree_rss(server), server.num_fds()
            for process in server.children(recursive=True):
                watcher.seen.setdefault(process.pid, process)
        figures.update(
            rss_mib=(round(warm_rss / 2**20, 1), round(end_rss / 2**20, 1)),
            server_fds=(warm_fds, end_fds),
            processes_seen=len(watcher.seen),
            most_workers=watcher.most_workers,
        )
    # rk_serve sent SIGTERM and reaped the server: every process it ever had is gone with it.
    _, alive = psutil.wait_procs(list(watcher.seen.values()), timeout=15)
    figures.update(requests=dict(tally.requests), items=dict(tally.items))
    print(figures)

    assert not tally.problems, "\n".join(tally.problems)
    assert tally.items["good"] > 1000, figures
    assert all(tally.items[kind] > 0 for kind in BATCH_KINDS), figures
    assert not alive, f"processes outlived the server: {alive}"
    # A broken pool is replaced before the old one stops: never more than two pools' worth.
    assert watcher.most_workers <= 2 * WORKERS, figures
    assert end_rss < warm_rss * (1 + RSS_GROWTH_LIMIT), figures
    assert abs(end_fds - warm_fds) <= FD_TOLERANCE, figures
    assert psutil.Process().num_fds() == own_fds, figures
