"""The models accept reward-kit 0.4 payloads and keep what they do not know."""

from __future__ import annotations

import math
import pickle

import pytest
from pydantic import ValidationError

from reward_kit import (
    EvaluateResult,
    EvaluationTimeout,
    Message,
    MetricResult,
    RewardKitError,
    StepOutput,
    UnknownFunction,
)
from reward_kit._errors import RequestRejected, error_from_response


def test_upstream_result_payload_validates() -> None:
    payload = {
        "score": 0.5,
        "is_score_valid": True,
        "reason": "half",
        "metrics": {"m": {"is_score_valid": True, "score": 1.0, "reason": "ok", "success": True}},
        "step_outputs": [{"step_index": 0, "base_reward": 0.1, "metrics": {}, "reason": None}],
        "error": None,
    }
    result = EvaluateResult.model_validate(payload)
    assert result.metrics["m"].score == 1.0
    assert result.step_outputs == [StepOutput(step_index=0, base_reward=0.1)]
    assert result["score"] == 0.5
    assert result.get("reason") == "half"
    assert "metrics" in result
    assert next(iter(result)) == "score"


def test_defaults_match_upstream() -> None:
    result = EvaluateResult(score=1)
    assert (result.is_score_valid, result.reason, result.metrics, result.step_outputs) == (
        True,
        None,
        {},
        None,
    )
    assert MetricResult(score=0.2).is_score_valid is True
    assert Message(role="user").content == ""


def test_message_keeps_unknown_fields_and_content_parts() -> None:
    message = Message.model_validate(
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "a"},
                {"type": "image_url"},
                {"type": "text", "text": "b"},
            ],
            "reasoning_content": "hmm",
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        }
    )
    assert message.text == "ab"
    assert message.model_dump()["reasoning_content"] == "hmm"
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "f"
    assert Message(role="tool", content=None).text == ""


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_score_is_rejected(bad: float) -> None:
    with pytest.raises(ValidationError, match="finite"):
        EvaluateResult(score=bad)


def test_errors_carry_status_and_code_and_survive_pickling() -> None:
    error = EvaluationTimeout("too slow")
    assert (error.status, error.code) == (504, "timeout")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is EvaluationTimeout
    assert copy.message == "too slow"


def test_errors_map_back_from_the_wire() -> None:
    err = error_from_response(404, UnknownFunction("no 'x'").to_payload())
    assert isinstance(err, UnknownFunction)
    assert err.message == "no 'x'"
    assert (
        type(error_from_response(418, {"error": {"code": "teapot", "message": "m"}}))
        is RequestRejected
    )
    unavailable = error_from_response(503, "<html>")
    assert unavailable.code == "unavailable"
    assert isinstance(unavailable, RewardKitError)


def test_bare_gateway_statuses_map_to_their_class() -> None:
    from reward_kit import AuthenticationError, Overloaded

    assert type(error_from_response(429, "Too Many Requests")) is Overloaded
    assert type(error_from_response(401, None)) is AuthenticationError
