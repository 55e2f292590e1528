"""Graceful shutdown: SIGTERM during a batch lets it finish, refuses new work, exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ..conftest import FIXTURES, free_port, wait_for_health

pytestmark = pytest.mark.slow


def test_sigterm_finishes_the_batch_refuses_new_work_and_exits_0() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rk_serve = Path(sys.executable).parent / "rk-serve"
    process = subprocess.Popen(
        [
            str(rk_serve),
            str(FIXTURES / "cpu_rewards.py"),
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-format",
            "json",
            "--shutdown-grace",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for_health(url, process)
        items = [{"messages": [{"role": "assistant", "content": "x"}], "ms": 20}] * 100
        result: dict[str, httpx.Response] = {}
        batch = threading.Thread(
            target=lambda: result.setdefault(
                "r", httpx.post(f"{url}/batch_evaluate", json={"items": items}, timeout=30)
            )
        )
        batch.start()
        time.sleep(0.3)  # the batch (about 1 s of work on 2 workers) is now running
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{url}/evaluate", json=items[0], timeout=5)
        batch.join(timeout=30)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    statuses = {r["status"] for r in result["r"].json()["results"]}
    assert statuses == {"ok"}
    logs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(entry["logger"] == "reward_kit.access" for entry in logs)
    assert all("time" in entry and "level" in entry for entry in logs)
