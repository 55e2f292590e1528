"""Variants of issue 11's engine classes a red team tried after the first fix: signals and
hostile exception messages from rewards in the server process, and non-finite scores set
after validation."""

from __future__ import annotations

import httpx
import pytest

from ..conftest import FIXTURES, error_of, rk_serve

REWARDS = str(FIXTURES / "engine_hostile.py")
MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "4"}]


def _post(url: str, function: str, **fields: object) -> httpx.Response:
    return httpx.post(f"{url}/evaluate/{function}", json={"messages": MESSAGES, **fields})


def test_an_alarm_from_a_reward_in_the_server_process_does_not_end_it() -> None:
    with rk_serve(REWARDS, "--workers", "0") as url:
        assert _post(url, "rings_alarm").status_code == 200
        import time

        time.sleep(1.5)  # the alarm goes off
        assert httpx.get(f"{url}/health").status_code == 200
        assert _post(url, "ok").json()["score"] == 1.0


@pytest.mark.parametrize("workers", ["0", "1"])
def test_an_exception_whose_message_raises_fails_only_its_item(workers: str) -> None:
    with rk_serve(REWARDS, "--workers", workers) as url:
        message = error_of(_post(url, "hostile_message"), 500, "function_error")
        assert message.startswith("_Hostile")
        items = [{"messages": MESSAGES}] * 2
        batch = httpx.post(f"{url}/batch_evaluate/hostile_message", json={"items": items})
        assert [r["status"] for r in batch.json()["results"]] == ["error", "error"]
        assert _post(url, "ok").json()["score"] == 1.0


@pytest.mark.parametrize("where", ["score", "metric", "constructed"])
def test_a_score_made_non_finite_after_validation_is_an_error(where: str) -> None:
    with rk_serve(REWARDS, "--workers", "1") as url:
        message = error_of(_post(url, "mutated_nan", where=where), 500, "function_error")
        assert "finite" in message
