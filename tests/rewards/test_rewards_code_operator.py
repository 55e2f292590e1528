"""Security choices of the code rewards belong to the operator, not to requests; and ground
truth without tests is an error, never a score. Over the service where it matters."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reward_kit import ConfigurationError, InvalidRequest
from reward_kit.rewards import code_execution_reward
from reward_kit.sandbox import SandboxUnavailable

from ..conftest import rk_serve

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("needs_bwrap")]

TARGET = "reward_kit.rewards:code_execution_reward"
ENV_READER = "```python\nimport os\nprint(open(f'/proc/{os.getppid()}/environ').read())\n```"


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


class Server:
    """A real rk-serve serving the built-in, started with the operator's environment (its
    worker processes are started by the server, so they inherit it)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, json: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=json, timeout=60)


@pytest.fixture
def serve() -> Iterator[Any]:
    with contextlib.ExitStack() as stack:

        def start(**env: str) -> Server:
            args = (TARGET, "--workers", "1")
            return Server(stack.enter_context(rk_serve(*args, env=env)))

        yield start


def evaluate(client: Server, code: str, truth: Any, **kwargs: Any) -> httpx.Response:
    body = {"messages": say(code), "ground_truth": truth, "kwargs": kwargs}
    return client.post(f"/evaluate/{TARGET.split(':')[1]}", json=body)


def test_a_request_cannot_choose_the_weak_sandbox(serve: Any) -> None:
    # bubblewrap "missing" on this server; the operator did not allow the weak sandbox.
    client = serve(RK_SANDBOX_BWRAP="/nonexistent/bwrap", RK_TEST_SERVER_SECRET="ENV-SECRET")
    response = evaluate(client, ENV_READER, {"tests": ["pass"]}, allow_weak_sandbox=True)
    assert response.status_code != 200, response.text
    error = response.json()["error"]
    assert error["code"] in ("sandbox_unavailable", "function_error"), error
    assert "RK_SANDBOX_ALLOW_WEAK=1" in error["message"]
    assert "ENV-SECRET" not in response.text


def test_the_operator_can_allow_the_weak_sandbox(serve: Any) -> None:
    client = serve(RK_SANDBOX_BWRAP="/nonexistent/bwrap", RK_SANDBOX_ALLOW_WEAK="1")
    response = evaluate(client, "def f():\n    return 1", {"tests": ["assert f() == 1"]})
    assert response.status_code == 200, response.text
    assert response.json()["score"] == 1.0
    assert "(weak)" in response.json()["reason"]


def test_request_limits_only_tighten_the_operators(serve: Any) -> None:
    client = serve(RK_SANDBOX_MAX_SECONDS="2", RK_SANDBOX_MAX_MEMORY_MB="100")
    sleeper = "import time\ntime.sleep(8)\nprint(3)"
    start = time.monotonic()
    slow = evaluate(
        client, sleeper, {"test_cases": [{"input": "", "output": "3"}]}, timeout_per_run=30
    )
    assert slow.status_code == 200, slow.text
    assert slow.json()["score"] == 0.0
    assert "timeout" in slow.json()["metrics"]["test_0"]["reason"]
    assert time.monotonic() - start < 7
    hog = "block = b'x' * (300 << 20)\nprint(3)"
    big = evaluate(client, hog, {"test_cases": [{"input": "", "output": "3"}]}, memory_mb=4096)
    assert big.json()["score"] == 0.0
    assert "memory_limit" in big.json()["metrics"]["test_0"]["reason"]
    # Tighter than the operator's is honoured.
    quick = evaluate(
        client,
        sleeper.replace("8", "1.5"),
        {"test_cases": [{"input": "", "output": "3"}]},
        timeout_per_run=0.5,
    )
    assert "timeout" in quick.json()["metrics"]["test_0"]["reason"]


@pytest.mark.parametrize(
    ("truth", "field"),
    [
        ({"tests": []}, "ground_truth.tests"),
        ([], "ground_truth"),
        ({"test_cases": []}, "ground_truth.test_cases"),
        ({"tests": [""]}, "ground_truth.tests"),
        ({"cases": [1]}, "ground_truth"),
        ({"tests": ["assert True", {"input": "1"}]}, "ground_truth.tests"),
        ("[]", "ground_truth"),
    ],
)
def test_empty_or_invalid_tests_are_a_clear_error(truth: Any, field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        code_execution_reward(say("print(1)"), ground_truth=truth)
    message = str(raised.value)
    assert message.startswith(f"{field}:"), message
    assert '{"test_cases": [{"input"' in message
    assert '{"tests": ["assert' in message


def test_empty_tests_over_the_service_are_an_error_not_a_score(serve: Any) -> None:
    client = serve()
    truths: list[Any] = [{"tests": []}, [], {"test_cases": []}]
    for truth in truths:
        response = evaluate(client, "print(1)", truth)
        assert response.status_code in (400, 422, 500), response.text
        error = response.json()["error"]
        assert "score" not in response.json()
        assert "expected stdin/stdout cases" in error["message"], error


def test_bad_operator_settings_are_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_SANDBOX_MAX_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="RK_SANDBOX_MAX_SECONDS"):
        code_execution_reward(say("print(1)"), ground_truth={"tests": ["pass"]})
    monkeypatch.delenv("RK_SANDBOX_MAX_SECONDS")
    monkeypatch.setenv("RK_SANDBOX_ALLOW_WEAK", "maybe")
    with pytest.raises(ConfigurationError, match="RK_SANDBOX_ALLOW_WEAK"):
        code_execution_reward(say("print(1)"), ground_truth={"tests": ["pass"]})
    with pytest.raises(InvalidRequest, match="timeout_per_run"):
        code_execution_reward(say("print(1)"), ground_truth={"tests": ["pass"]}, timeout_per_run=-1)


def test_a_call_cannot_choose_the_weak_sandbox_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same over a direct call, with bubblewrap really unfound: the keyword is no option."""
    import reward_kit.sandbox._sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "find_bwrap", lambda explicit=None: None)
    monkeypatch.setenv("RK_TEST_SERVER_SECRET", "ENV-SECRET")
    with pytest.raises(SandboxUnavailable, match="RK_SANDBOX_ALLOW_WEAK=1"):
        code_execution_reward(
            say(ENV_READER), ground_truth={"test_cases": [{"output": "x"}]}, allow_weak_sandbox=True
        )
