"""setup= runs once per worker and reaches the function; a failing setup stops the start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reward_kit import ConfigurationError, RewardFunction, load_functions
from reward_kit.engine import Engine
from reward_kit.service import ServeSettings, create_app

SETUP = Path(__file__).parent.parent / "fixtures" / "setup"


def test_setup_runs_once_per_worker() -> None:
    settings = ServeSettings(targets=(str(SETUP / "counted_setup.py"),), workers=2)
    items = [{"messages": [{"role": "assistant", "content": "x"}]}] * 200
    with TestClient(create_app(settings=settings), base_url="http://localhost") as client:
        results = []
        for _ in range(3):
            response = client.post("/batch_evaluate", json={"items": items})
            results += response.json()["results"]
    assert {r["status"] for r in results} == {"ok"}
    # Every item saw a process where setup ran exactly once, whichever worker it landed on.
    assert {r["result"]["score"] for r in results} == {1.0}
    assert 1 <= len({r["result"]["reason"] for r in results}) <= 2


def test_failing_setup_stops_the_engine_with_a_clear_error() -> None:
    functions = load_functions([str(SETUP / "broken_setup.py")])

    async def start() -> None:
        engine = Engine(functions=functions, workers=1)
        try:
            await engine.start()
        finally:
            await engine.close()

    with pytest.raises(ConfigurationError, match=r"'needs_model'.*FileNotFoundError|missing\.bin"):
        asyncio.run(start())


def test_failing_setup_in_thread_isolation_is_caught_at_start() -> None:
    (loaded,) = load_functions([str(SETUP / "broken_setup.py")]).values()
    fn = RewardFunction(loaded.func, setup=loaded.setup, isolation="thread")

    async def start() -> None:
        engine = Engine(functions={fn.name: fn}, workers=1)
        try:
            await engine.start()
        finally:
            await engine.close()

    with pytest.raises(ConfigurationError, match="setup of reward function 'needs_model' failed"):
        asyncio.run(start())


def test_zero_workers_runs_process_rewards_in_threads(live_server: type) -> None:
    """AWS Lambda has no /dev/shm for multiprocessing: RK_WORKERS=0 must still serve, with
    deadlines reported (not killed)."""
    import httpx
    import psutil

    from ..conftest import HOSTILE

    before = len(psutil.Process().children(recursive=True))
    settings = ServeSettings(targets=(HOSTILE,), workers=0)
    with live_server(create_app(settings=settings)) as live:
        body = {"messages": [{"role": "assistant", "content": "4"}], "ground_truth": "4"}
        assert httpx.post(f"{live.url}/evaluate/good", json=body).json()["score"] == 1.0
        slow = httpx.post(f"{live.url}/evaluate/sleeper?timeout=0.5", json=body, timeout=10)
        assert slow.status_code == 504
        assert httpx.get(f"{live.url}/health").json()["workers"] == 0
        assert len(psutil.Process().children(recursive=True)) == before
