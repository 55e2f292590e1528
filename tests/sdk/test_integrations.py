"""OpenRLHF's remote-RM endpoint and verl's compute_score, against a real evaluator."""

from __future__ import annotations

import json
import pickle

import httpx
import pytest

from reward_kit import EvaluatorUnavailable, FunctionError, UnknownFunction
from reward_kit._openrlhf import completion_of
from reward_kit.sdk.verl import compute_score_fn

from ..conftest import LiveServer, free_port
from .conftest import KEY, CountingTransport

HEADERS = {"Authorization": f"Bearer {KEY}"}


def openrlhf(server: LiveServer, body: object, function: str = "echo") -> httpx.Response:
    return httpx.post(f"{server.url}/openrlhf/{function}", json=body, headers=HEADERS)


def test_openrlhf_request_is_scored_with_query_minus_prompt(server: LiveServer) -> None:
    body = {
        "query": ["<s>User: 2+2?\nAssistant: 4</s>", "<s>User: 1+1?\nAssistant: two</s>"],
        "prompts": ["User: 2+2?\nAssistant:", "User: 1+1?\nAssistant:"],
        "labels": ["4", {"value": 2}],
    }
    response = openrlhf(server, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["rewards"] == [pytest.approx(0.06), pytest.approx(0.08)]  # " 4</s>", " two</s>"
    assert answer["scores"] == answer["rewards"]
    assert answer["extra_logs"] == {"has_digit": [1.0, 0.0], "length": answer["rewards"]}


def test_openrlhf_passes_labels_as_ground_truth(server: LiveServer) -> None:
    from reward_kit.sdk import EvaluatorClient

    # What the function saw is in its reason; read it through /evaluate to compare.
    body = {"query": ["P: x A: y"], "prompts": ["P: x A:"], "labels": [{"k": [1]}]}
    assert openrlhf(server, body).status_code == 200
    with EvaluatorClient(server.url, auth=KEY) as client:
        same = client.evaluate(
            [{"role": "user", "content": "P: x A:"}, {"role": "assistant", "content": " y"}],
            {"k": [1]},
            function="echo",
        )
    assert json.loads(same.reason or "")["ground_truth"] == {"k": [1]}
    assert openrlhf(server, body).json()["rewards"] == [same.score]


def test_openrlhf_failed_sample_fails_the_request_never_a_number(server: LiveServer) -> None:
    body = {"query": ["p a", "p b"], "prompts": ["p", "p"], "labels": [None, None]}
    response = openrlhf(server, body, function="fails")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "function_error"
    assert "2 of 2" in error["message"]
    assert "rewards" not in response.json()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": ["a"], "prompts": ["a", "b"]}, 422),
        ({"query": "a", "prompts": ["a"]}, 422),
        ([1, 2], 422),
    ],
)
def test_openrlhf_rejects_malformed_requests(server: LiveServer, body: object, status: int) -> None:
    assert openrlhf(server, body).status_code == status


def test_openrlhf_needs_auth_and_a_known_function(server: LiveServer) -> None:
    body = {"query": ["a"], "prompts": ["a"], "labels": ["x"]}
    assert httpx.post(f"{server.url}/openrlhf/echo", json=body).status_code == 401
    assert openrlhf(server, body, function="nope").status_code == 404


def test_completion_is_the_text_after_the_prompt() -> None:
    assert completion_of("<bos>Q? A", "Q?") == " A"
    assert completion_of("no prompt inside", "Q?") == "no prompt inside"
    assert completion_of("abc", "") == "abc"


def test_verl_compute_score_returns_score_and_metrics(server: LiveServer) -> None:
    compute_score = compute_score_fn(server.url, function="echo", auth=KEY)
    result = compute_score("gsm8k", "answer 42", "42", extra_info={"index": 3})
    assert result == {"score": pytest.approx(0.09), "has_digit": 1.0, "length": 0.09}
    clone = pickle.loads(pickle.dumps(compute_score))  # verl ships it to Ray workers
    assert clone("gsm8k", "x", "y")["score"] == pytest.approx(0.01)
    compute_score.close()
    clone.close()


def test_verl_pickles_after_use_when_built_from_a_client_with_a_transport(
    server: LiveServer,
) -> None:
    from reward_kit.sdk import EvaluatorClient

    transport = CountingTransport()  # holds an SSLContext: cannot be pickled
    compute_score = compute_score_fn(
        EvaluatorClient(server.url, auth=KEY, transport=transport), function="echo"
    )
    assert compute_score("src", "abc", "x")["score"] == pytest.approx(0.03)
    clone = pickle.loads(pickle.dumps(compute_score))  # verl ships it to Ray workers
    assert clone("src", "abcd", "x")["score"] == pytest.approx(0.04)
    # The copy uses the default transport (/functions: the metric keys, looked up once).
    assert transport.paths == ["/functions", "/evaluate/echo"]
    compute_score.close()
    clone.close()


def test_verl_errors_raise_unless_a_fallback_is_chosen(server: LiveServer) -> None:
    failing = compute_score_fn(server.url, function="fails", auth=KEY)
    with pytest.raises(FunctionError):
        failing("src", "x", "y")
    chosen = compute_score_fn(server.url, function="fails", auth=KEY, on_error=-1.0)
    assert chosen("src", "x", "y") == {"score": -1.0, "reward_kit_failed": 1.0}
    ok = compute_score_fn(server.url, function="echo", auth=KEY, on_error=-1.0)
    assert ok("src", "x", "y")["reward_kit_failed"] == 0.0  # same keys on every sample
    unknown = compute_score_fn(server.url, function="nope", auth=KEY, on_error=-1.0)
    with pytest.raises(UnknownFunction):  # a misconfiguration is never papered over
        unknown("src", "x", "y")
    for fn in (failing, chosen, ok, unknown):
        fn.close()


def test_verl_unreachable_raises() -> None:
    compute_score = compute_score_fn(f"http://127.0.0.1:{free_port()}", function="f", max_retries=0)
    with pytest.raises(EvaluatorUnavailable):
        compute_score("src", "x", "y")
    compute_score.close()
