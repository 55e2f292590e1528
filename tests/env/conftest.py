"""Live servers of the test environments (tests/fixtures/env_games.py) with two API keys."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reward_kit.service import ServeSettings, create_app
from tests.conftest import LiveServer

GAMES = str(Path(__file__).resolve().parent.parent / "fixtures" / "env_games.py")
ALICE = "alice-" + "a" * 32
BOB = "bob-" + "b" * 32


def serve(**settings: Any) -> LiveServer:
    options = {"targets": (GAMES,), "workers": 0, "api_keys": (f"alice {ALICE}", f"bob {BOB}")}
    return LiveServer(create_app(settings=ServeSettings(**{**options, **settings})))


def client(server: LiveServer, key: str = ALICE) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def eventually(check: Callable[[], Any], what: str, limit: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (an outcome, not a wall time: the
    limit only stops a broken test from hanging)."""
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def session_processes(server: LiveServer) -> list[int]:
    """Every process below the environments' fork server (the sessions and what they started)."""
    forkserver = server.config.app.state.env_sessions.forkserver.pid
    found, todo = [], [forkserver]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:  # it exited meanwhile (a session ending as the test looks)
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as file:
                    children = [int(c) for c in file.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as file:
                for line in file:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with serve(env_memory_limit_mb=256) as live:
        yield live


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, ALICE) as http:
        yield http


@pytest.fixture
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    with client(server, BOB) as http:
        yield http
