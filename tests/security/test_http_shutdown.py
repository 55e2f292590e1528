"""A request cut by the shutdown grace (a Cloud Run scale-in, a rolling deploy) is answered
with a JSON 503 the SDK retries, so the training step it belongs to does not fail."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from reward_kit.sdk import EvaluatorClient

from ..conftest import error_of, free_port
from .http_helpers import HTTP_REWARDS, MESSAGES, serving

pytestmark = pytest.mark.slow

SLOW = {"messages": MESSAGES, "seconds": 3}


def test_a_request_cut_by_the_grace_gets_a_json_503_with_retry_after() -> None:
    answers: dict[str, httpx.Response] = {}

    def post(name: str, path: str, body: object) -> None:
        answers[name] = httpx.post(server.url + path, json=body, timeout=30)

    args = (HTTP_REWARDS, "--workers", "2", "--shutdown-grace", "1")
    with serving(*args) as server:
        posts = [
            threading.Thread(target=post, args=("single", "/evaluate/sleepy", SLOW)),
            threading.Thread(
                target=post, args=("batch", "/batch_evaluate/sleepy", {"items": [SLOW]})
            ),
        ]
        for thread in posts:
            thread.start()
        time.sleep(0.5)  # both are being evaluated
        server.process.send_signal(signal.SIGTERM)
        for thread in posts:
            thread.join(timeout=30)
        assert server.process.wait(timeout=30) == 0
    for name in ("single", "batch"):
        response = answers[name]
        message = error_of(response, 503, "shutting_down")
        assert "retry" in message
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/json"
    assert "Traceback" not in server.output
    assert "shutting down: POST /evaluate/sleepy stopped" in server.output


def test_the_sdk_retries_a_cut_batch_on_the_next_server() -> None:
    port = free_port()
    items = [{"messages": MESSAGES, "seconds": 2}] * 2
    result: dict[str, object] = {}

    def train_step(url: str) -> None:
        with EvaluatorClient(url, auth=False, max_retries=8, timeout=60) as client:
            try:
                result["scores"] = [
                    r.score for r in client.batch_evaluate(items, function="sleepy")
                ]
            except Exception as error:  # reported below
                result["error"] = error

    args = (HTTP_REWARDS, "--workers", "2", "--shutdown-grace", "0.5")
    with serving(*args, port=port) as old:
        step = threading.Thread(target=train_step, args=(old.url,))
        step.start()
        time.sleep(0.5)
        old.process.send_signal(signal.SIGTERM)  # a rolling deploy: the old server goes...
        assert old.process.wait(timeout=30) == 0
    with serving(HTTP_REWARDS, "--workers", "2", port=port):  # ... and the new one comes up
        step.join(timeout=60)
    assert result == {"scores": [1.0, 1.0]}
    assert "shutting down: POST /batch_evaluate" in old.output
