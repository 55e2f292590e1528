"""Structure (JSON Schema, tool calls) and text (string check, similarity) rewards."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reward_kit import InvalidRequest
from reward_kit.rewards import (
    json_schema_reward,
    string_check_reward,
    text_similarity_reward,
    tool_call_reward,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age"],
}


def say(text: str | None, **extra: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text, **extra}]


def test_json_schema_valid_from_a_fence_and_from_prose() -> None:
    fenced = '```json\n{"name": "Ada", "age": 36}\n```'
    assert json_schema_reward(say(fenced), ground_truth=SCHEMA).score == 1.0
    prose = 'Here: {"name": "Ada", "age": 36, "tags": ["x"]} done'
    assert json_schema_reward(say(prose), schema=json.dumps(SCHEMA)).score == 1.0


def test_json_schema_partial_credit() -> None:
    half = json_schema_reward(say('{"name": "Ada", "age": -1, "tags": [1]}'), ground_truth=SCHEMA)
    assert half.score == pytest.approx(1 / 3)
    assert "age" in half.metrics["schema_valid"].reason
    missing = json_schema_reward(say('{"name": "Ada"}'), ground_truth=SCHEMA)
    assert missing.score == pytest.approx(2 / 3)
    strict = json_schema_reward(say('{"name": "Ada"}'), ground_truth=SCHEMA, partial_credit=False)
    assert strict.score == 0.0
    assert json_schema_reward(say("[1, 2]"), ground_truth=SCHEMA).score == 0.0  # wrong at root


def test_json_schema_no_json_and_bad_schema() -> None:
    assert json_schema_reward(say("nothing"), ground_truth=SCHEMA).metrics["json_found"].score == 0
    with pytest.raises(InvalidRequest, match="not a valid JSON Schema"):
        json_schema_reward(say("{}"), ground_truth={"type": "nonsense"})
    with pytest.raises(InvalidRequest):
        json_schema_reward(say("{}"))


def _native(*calls: tuple[str, Any]) -> list[dict[str, Any]]:
    return say(
        None,
        tool_calls=[
            {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)
        ],
    )


GOLD = [
    {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},
    {"type": "function", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}},
]


def test_tool_calls_exact_any_order() -> None:
    messages = _native(
        ("get_time", '{"tz": "CET"}'), ("get_weather", '{"city": "Paris", "days": 3}')
    )
    assert tool_call_reward(messages, ground_truth=GOLD).score == 1.0
    assert tool_call_reward(messages, ground_truth=GOLD, order_matters=True).score == 0.0
    assert tool_call_reward(messages, ground_truth={"tool_calls": GOLD}).score == 1.0


def test_tool_calls_in_content_tags_and_relaxed_matching() -> None:
    text = (
        '<tool_call>{"name": "get_weather", "arguments": {"city": " paris ", "days": "3"}}'
        "</tool_call>"
    )
    assert tool_call_reward(say(text), ground_truth=GOLD[:1]).score == 0.0
    assert tool_call_reward(say(text), ground_truth=GOLD[:1], match="relaxed").score == 1.0
    one_arg = text.replace(', "days": "3"', "")
    assert tool_call_reward(say(one_arg), ground_truth=GOLD[:1], match="relaxed").score == 0.5


def test_tool_calls_missing_extra_and_malformed() -> None:
    only_one = _native(("get_weather", '{"city": "Paris", "days": 3}'))
    assert tool_call_reward(only_one, ground_truth=GOLD).score == 0.5
    malformed = _native(("get_weather", "{not json"))
    assert tool_call_reward(malformed, ground_truth=GOLD[:1]).score == 0.0
    assert tool_call_reward(say("no call"), ground_truth=[]).score == 1.0
    assert tool_call_reward(only_one, ground_truth=[]).score == 0.0
    with pytest.raises(InvalidRequest):
        tool_call_reward(only_one, ground_truth=[{"arguments": {}}])


@pytest.mark.parametrize(
    ("operation", "text", "reference", "case_sensitive", "score"),
    [
        ("equals", " Paris ", "Paris", True, 1.0),
        ("equals", "paris", "Paris", True, 0.0),
        ("equals", "paris", "Paris", False, 1.0),
        ("not_equals", "Rome", "Paris", True, 1.0),
        ("contains", "It is Paris.", "Paris", True, 1.0),
        ("not_contains", "It is Paris.", "Rome", True, 1.0),
        ("regex", "order #12345", r"#\d{5}\b", True, 1.0),
        ("regex", "ORDER", r"^order$", False, 1.0),
    ],
)
def test_string_check(
    operation: str, text: str, reference: str, case_sensitive: bool, score: float
) -> None:
    result = string_check_reward(
        say(text), ground_truth=reference, operation=operation, case_sensitive=case_sensitive
    )
    assert result.score == score


def test_string_check_rejects_bad_input() -> None:
    with pytest.raises(InvalidRequest):
        string_check_reward(say("x"), ground_truth="(", operation="regex")
    with pytest.raises(InvalidRequest):
        string_check_reward(say("x"), ground_truth="x", operation="like")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        string_check_reward(say("x"))


@pytest.mark.parametrize(
    "metric", ["fuzzy", "token_set", "bleu", "chrf", "rouge1", "rouge2", "rougeL"]
)
def test_similarity_is_one_for_identical_and_lower_for_different(metric: str) -> None:
    reference = "the quick brown fox jumps over the lazy dog"
    same = text_similarity_reward(say(reference), ground_truth=reference, metric=metric).score
    other = text_similarity_reward(
        say("a slow red cat sleeps under the busy bridge"), ground_truth=reference, metric=metric
    ).score
    assert same == pytest.approx(1.0)
    assert 0.0 <= other < 0.6


def test_similarity_takes_the_best_of_several_references() -> None:
    refs = ["completely unrelated words", "the cat sat on the mat"]
    result = text_similarity_reward(
        say("the cat sat on the mat"), ground_truth=refs, metric="rougeL"
    )
    assert result.score == pytest.approx(1.0)
    with pytest.raises(InvalidRequest, match="metric: expected one of"):
        text_similarity_reward(say("x"), ground_truth="x", metric="meteor")  # type: ignore[arg-type]
