"""The OpenRLHF route's fallback and extra_logs keys, and the SDK's reward_func, against a real
evaluator on loopback. (OpenRLHF's own code drives both in test_openrlhf_peer.py.)"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reward_kit import ConfigurationError, EvaluatorUnavailable, FunctionError, UnknownFunction
from reward_kit.sdk import EvaluatorClient
from reward_kit.sdk.openrlhf import reward_func_fn
from reward_kit.service import ServeSettings, create_app

from ..conftest import FIXTURES, LiveServer, free_port, require_integration
from .conftest import CountingTransport

REWARDS = str(FIXTURES / "openrlhf_rewards.py")
KEY = "openrlhf-test-key-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def make_server(**settings: Any) -> LiveServer:
    merged = {"targets": (REWARDS,), "api_keys": (KEY,), "workers": 1, **settings}
    return LiveServer(create_app(settings=ServeSettings(**merged)))


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with make_server() as live:
        yield live


def post(url: str, function: str, samples: list[tuple[str, str]]) -> httpx.Response:
    """One OpenRLHF request; each sample is (completion, label) after the prompt "Q:"."""
    body = {
        "query": [f"Q:{completion}" for completion, _ in samples],
        "prompts": ["Q:"] * len(samples),
        "labels": [label for _, label in samples],
    }
    return httpx.post(f"{url}/openrlhf/{function}", json=body, headers=HEADERS)


def logs_of(response: httpx.Response) -> dict[str, list[float]]:
    assert response.status_code == 200, response.text
    return response.json()["extra_logs"]  # type: ignore[no-any-return]


# -- the route ---------------------------------------------------------------------------------


def test_declared_metrics_are_listed_and_always_sent(server: LiveServer) -> None:
    listed = httpx.get(f"{server.url}/functions", headers=HEADERS).json()["functions"]
    assert {f["name"]: f["metrics"] for f in listed} == {
        "declared": ["answer_found", "length"],
        "undeclared": None,
        "slow": None,
    }
    # The very first sample has no answer: the declared key is there anyway, filled with 0.0.
    response = post(server.url, "declared", [("", "4"), ("4", "4")])
    assert logs_of(response) == {"answer_found": [0.0, 1.0], "length": [0.0, 0.1]}
    assert response.json()["rewards"] == [0.0, 1.0]


def test_without_on_error_a_failed_sample_fails_the_request(server: LiveServer) -> None:
    for label in ("FAIL", "INVALID"):
        response = post(server.url, "declared", [("4", "4"), ("4", label)])
        assert response.status_code == 500, response.text
        assert (
            "1 of 2 sample(s) have no reward (indices [1])" in response.json()["error"]["message"]
        )


def test_on_error_gives_the_fallback_flags_it_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with make_server(openrlhf_on_error=-0.25) as live, caplog.at_level(logging.WARNING):
        response = post(live.url, "declared", [("4", "4"), ("4", "FAIL"), ("4", "INVALID")])
    assert response.json()["rewards"] == [1.0, -0.25, -0.25]
    assert response.json()["scores"] == [1.0, -0.25, -0.25]
    assert logs_of(response) == {
        "answer_found": [1.0, 0.0, 0.0],
        "length": [0.1, 0.0, 0.0],
        "reward_kit_failed": [0.0, 1.0, 1.0],
    }
    warnings = [r.getMessage() for r in caplog.records if r.name == "reward_kit.openrlhf"]
    assert any("sample 1 of 3 failed" in w and "asked to fail" in w for w in warnings), warnings
    assert any("sample 2 of 3 failed" in w and "invalid" in w for w in warnings), warnings
    assert all("-0.25" in w for w in warnings)


def test_with_on_error_an_undeclared_function_sends_only_the_flag(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A failed sample can come before any result showed the metric names; its row must match
    # every later one, in every replica: so nothing but the flag, whatever came first.
    with make_server(openrlhf_on_error=0.0) as live, caplog.at_level(logging.WARNING):
        assert logs_of(post(live.url, "undeclared", [("4", "FAIL")])) == {
            "reward_kit_failed": [1.0]
        }
        for _ in range(2):
            later = post(live.url, "undeclared", [("4", "4"), ("", "4")])
            assert logs_of(later) == {"reward_kit_failed": [0.0, 0.0]}
    hints = [r.getMessage() for r in caplog.records if "declares no metrics" in r.getMessage()]
    assert len(hints) == 1  # once per function
    assert "@reward_function(metrics=[...])" in hints[0]


def test_without_on_error_an_undeclared_functions_keys_are_those_of_its_first_valid_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with make_server() as live, caplog.at_level(logging.WARNING):
        # The first valid result has no answer, so only "length": that is the key set now.
        first = post(live.url, "undeclared", [("", "4")])
        assert logs_of(first) == {"length": [0.0]}
        # answer_found appears later: left out (and logged once), never a changed key set.
        for _ in range(2):
            later = post(live.url, "undeclared", [("4", "4")])
            assert logs_of(later) == {"length": [0.1]}
    left_out = [
        r.getMessage() for r in caplog.records if "not in its metric keys" in r.getMessage()
    ]
    assert len(left_out) == 1
    assert "'answer_found'" in left_out[0]
    assert "@reward_function(metrics=[...])" in left_out[0]


def test_a_prompt_missing_from_its_query_is_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = {"query": ["A: 4", "Q: 4"], "prompts": ["Q:", "Q:"], "labels": ["4", "4"]}
    with make_server(metrics=True) as live, caplog.at_level(logging.WARNING):
        for _ in range(2):
            response = httpx.post(f"{live.url}/openrlhf/declared", json=body, headers=HEADERS)
            assert response.status_code == 200, response.text
        text = httpx.get(f"{live.url}/metrics", headers=HEADERS).text
    assert 'rk_openrlhf_prompt_not_found_total{function="declared"} 2.0' in text
    warned = [r.getMessage() for r in caplog.records if "is not in its query" in r.getMessage()]
    assert len(warned) == 1
    assert "sample 0" in warned[0]


def test_the_schema_requires_prompts(server: LiveServer) -> None:
    schema = httpx.get(f"{server.url}/openapi.json", headers=HEADERS).json()
    body = schema["paths"]["/openrlhf/{name}"]["post"]["requestBody"]
    required = body["content"]["application/json"]["schema"]["required"]
    assert sorted(required) == ["prompts", "query"]
    no_prompts = httpx.post(
        f"{server.url}/openrlhf/declared", json={"query": ["Q: 4"]}, headers=HEADERS
    )
    assert no_prompts.status_code == 422  # the handler refuses what the schema says
    assert "prompts" in no_prompts.json()["error"]["message"]


def test_on_error_setting_is_read_and_checked() -> None:
    assert ServeSettings().openrlhf_on_error is None
    environ = {"RK_OPENRLHF_ON_ERROR": "-1.5"}
    assert ServeSettings.resolve({}, environ).openrlhf_on_error == -1.5
    for bad in ("abc", "nan", "inf"):
        with pytest.raises(ConfigurationError, match="RK_OPENRLHF_ON_ERROR"):
            ServeSettings.resolve({}, {"RK_OPENRLHF_ON_ERROR": bad})
    with pytest.raises(ConfigurationError, match="openrlhf_on_error must be a finite number"):
        ServeSettings(openrlhf_on_error=float("nan"))


def test_the_flag_reaches_rk_serve() -> None:
    rk = [sys.executable, "-m", "reward_kit.cli", "serve", "--help"]
    shown = subprocess.run(rk, capture_output=True, text=True, check=True).stdout
    assert "--openrlhf-on-error SCORE" in shown
    refused = subprocess.run(
        [*rk[:-1], REWARDS, "--openrlhf-on-error", "zero"], capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "must be a finite number" in refused.stderr


# -- the SDK's reward_func ---------------------------------------------------------------------


@pytest.fixture
def needs_torch() -> None:
    """The reward_func answers with tensors: OpenRLHF always has torch, the base install not."""
    require_integration(modules=("torch",))


def scored(out: dict[str, Any]) -> dict[str, Any]:
    """The tensors of a reward_func answer as plain lists."""
    logs = {k: [round(x, 6) for x in v.tolist()] for k, v in out["extra_logs"].items()}
    return {"rewards": out["rewards"].tolist(), "scores": out["scores"].tolist(), "logs": logs}


def test_reward_func_sends_a_call_as_one_batch_with_the_declared_keys(
    server: LiveServer, needs_torch: None
) -> None:
    transport = CountingTransport()
    client = EvaluatorClient(server.url, auth=KEY, transport=transport)
    reward = reward_func_fn(client, function="declared")
    out = reward(["Q: 4", "Q:", "Q: 5"], ["Q:"] * 3, ["4", "4", "4"])
    assert scored(out) == {
        "rewards": [1.0, 0.0, 0.0],
        "scores": [1.0, 0.0, 0.0],
        "logs": {"answer_found": [1.0, 0.0, 1.0], "length": [0.1, 0.0, 0.1]},
    }
    reward(["Q: 4"], ["Q:"], ["4"])
    # The declared keys are read once per process; each call is one batch request.
    assert transport.paths == ["/functions", "/batch_evaluate", "/batch_evaluate"]
    reward.close()


def test_reward_func_raises_for_a_failed_sample_unless_on_error(
    server: LiveServer, needs_torch: None
) -> None:
    strict = reward_func_fn(server.url, function="declared", auth=KEY)
    with pytest.raises(FunctionError, match=r"1 of 2 sample\(s\) have no reward \(indices \[1\]\)"):
        strict(["Q: 4", "Q: 4"], ["Q:", "Q:"], ["4", "FAIL"])
    metrics = ["answer_found", "length"]
    lenient = reward_func_fn(
        server.url, function="declared", auth=KEY, on_error=-1, metrics=metrics
    )
    assert scored(lenient(["Q: 4", "Q: 4"], ["Q:", "Q:"], ["4", "INVALID"])) == {
        "rewards": [1.0, -1.0],
        "scores": [1.0, -1.0],
        "logs": {
            "answer_found": [1.0, 0.0],
            "length": [0.1, 0.0],
            "reward_kit_failed": [0.0, 1.0],
        },
    }
    # With on_error and no metrics=, the flag alone: the keys may not depend on the evaluator.
    flag_only = reward_func_fn(server.url, function="declared", auth=KEY, on_error=-1)
    assert scored(flag_only(["Q: 4", "Q: 4"], ["Q:", "Q:"], ["4", "INVALID"]))["logs"] == {
        "reward_kit_failed": [0.0, 1.0]
    }
    strict.close()
    lenient.close()
    flag_only.close()


class DownOnce(httpx.HTTPTransport):
    """The evaluator is unreachable for the first request, then answers."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.failed:
            self.failed = True
            raise httpx.ConnectError("down", request=request)
        return super().handle_request(request)


@pytest.mark.parametrize("metrics", [None, ["answer_found", "length"]])
def test_reward_func_rows_match_after_an_outage_on_the_first_call(
    server: LiveServer, needs_torch: None, metrics: list[str] | None
) -> None:
    client = EvaluatorClient(server.url, auth=KEY, transport=DownOnce(), max_retries=0)
    reward = reward_func_fn(client, function="declared", on_error=-1.0, metrics=metrics)
    down = scored(reward(["Q: 4"], ["Q:"], ["4"]))
    up = scored(reward(["Q: 4"], ["Q:"], ["4"]))
    assert (down["rewards"], up["rewards"]) == ([-1.0], [1.0])
    # OpenRLHF merges a batch's samples key by key: the two rows must have the same keys.
    assert set(down["logs"]) == set(up["logs"]) == {*(metrics or ()), "reward_kit_failed"}
    reward.close()


def test_adapters_refuse_bad_metrics_and_on_error() -> None:
    for name in ("score", "reward", "reward_kit_failed"):
        with pytest.raises(ValueError, match=f"metrics: '{name}' would overwrite"):
            reward_func_fn("http://h", function="f", metrics=["a", name])
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match="on_error must be 'raise' or a finite number"):
            reward_func_fn("http://h", function="f", on_error=bad)


def test_reward_func_falls_back_when_the_evaluator_is_down_only_if_asked(needs_torch: None) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    strict = reward_func_fn(down, function="f", auth=False, max_retries=0, metrics=["a"])
    with pytest.raises(EvaluatorUnavailable):
        strict(["Q: 4"], ["Q:"], ["4"])
    lenient = reward_func_fn(down, function="f", auth=False, max_retries=0, on_error=0.0)
    assert scored(lenient(["Q: 4", "Q: 5"], ["Q:", "Q:"], ["4", "4"])) == {
        "rewards": [0.0, 0.0],
        "scores": [0.0, 0.0],
        "logs": {"reward_kit_failed": [1.0, 1.0]},
    }


def test_reward_func_refuses_what_is_wrong_whatever_on_error(server: LiveServer) -> None:
    reward = reward_func_fn(server.url, function="nope", auth=KEY, on_error=0.0)
    with pytest.raises(UnknownFunction, match="'nope'"):
        reward(["Q: 4"], ["Q:"], ["4"])
    with pytest.raises(ValueError, match="same length"):
        reward(["Q: 4"], ["Q:", "Q:"], ["4"])
    reward.close()
    with pytest.raises(ValueError, match="on_error"):
        reward_func_fn(server.url, function="declared", on_error="zero")
    with pytest.raises(ValueError, match="on_error"):
        reward_func_fn(server.url, function="declared", on_error=True)
    with pytest.raises(TypeError, match="metrics"):
        reward_func_fn(server.url, function="declared", metrics="length")


def test_reward_func_pickles_and_metrics_given_win(server: LiveServer, needs_torch: None) -> None:
    # OpenRLHF 0.8 hands reward_func to ray.remote, which pickles it with what it refers to.
    reward = reward_func_fn(server.url, function="declared", auth=KEY, metrics=["length"])
    assert scored(reward(["Q: 4"], ["Q:"], ["4"]))["logs"] == {"length": [0.1]}
    clone = pickle.loads(pickle.dumps(reward))
    assert scored(clone(["Q: 45"], ["Q:"], ["4"]))["logs"] == {"length": [0.2]}
    reward.close()
    clone.close()


def test_importing_the_sdk_module_does_not_import_torch() -> None:
    code = "import sys, reward_kit.sdk.openrlhf; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_reward_func_warns_once_when_a_prompt_is_not_in_its_query(
    server: LiveServer, needs_torch: None, caplog: pytest.LogCaptureFixture
) -> None:
    reward = reward_func_fn(server.url, function="declared", auth=KEY)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            reward(["A: 4"], ["Q:"], ["4"])  # scored whole
        reward(["Q: 4"], ["Q:"], ["4"])
    warned = [r.getMessage() for r in caplog.records if "is not in its query" in r.getMessage()]
    assert len(warned) == 1
    assert "declared" in warned[0]
    reward.close()
