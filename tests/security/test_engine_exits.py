"""Issue 11, critical: a reward raising SystemExit or KeyboardInterrupt (sys.exit(), exit(), an
argparse or click parse error in a helper...) is that item's error, never the server's exit,
wherever the reward runs: worker process, threads (--workers 0, the Lambda mode), inline,
async, single and batch."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ..conftest import FIXTURES, error_of, rk_serve

REWARDS = str(FIXTURES / "engine_hostile.py")
MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "4"}]
HOWS = ["sys.exit", "exit", "argparse", "click", "keyboard", "generator"]
FUNCTIONS = ["exits_process", "exits_thread", "exits_inline", "exits_async", "exits_async_inline"]
EXPECTED = {
    "sys.exit": "SystemExit: 2",
    "exit": "SystemExit: 3",
    "argparse": "SystemExit: 2",
    "click": "SystemExit",
    "keyboard": "KeyboardInterrupt",
    "generator": "GeneratorExit",
}


@pytest.fixture(scope="module", params=["1", "0"], ids=["workers", "lambda-threads"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    with rk_serve(REWARDS, "--workers", request.param, "--log-level", "critical") as url:
        yield url


def _still_serving(url: str) -> None:
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    response = httpx.post(f"{url}/evaluate/ok", json={"messages": MESSAGES}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["score"] == 1.0


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("how", HOWS)
def test_an_exit_from_a_reward_is_its_items_error(server: str, function: str, how: str) -> None:
    body = {"messages": MESSAGES, "how": how}
    response = httpx.post(f"{server}/evaluate/{function}", json=body, timeout=10)
    message = error_of(response, 500, "function_error")
    assert message.startswith(EXPECTED[how]), message
    _still_serving(server)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_an_exit_in_a_batch_fails_only_that_item(server: str, function: str) -> None:
    items = [{"messages": MESSAGES, "how": how} for how in ["none", "sys.exit", "keyboard"]]
    response = httpx.post(f"{server}/batch_evaluate/{function}", json={"items": items}, timeout=20)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ok", "error", "error"], results
    assert results[1]["error"]["message"].startswith("SystemExit: 2")
    assert results[2]["error"]["code"] == "function_error"
    _still_serving(server)


def test_an_exit_in_a_batch_mode_function_fails_its_group(server: str) -> None:
    items = [{"messages": MESSAGES, "how": "sys.exit"}, {"messages": MESSAGES}]
    response = httpx.post(f"{server}/batch_evaluate/exits_batch", json={"items": items})
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["error", "error"]
    _still_serving(server)
