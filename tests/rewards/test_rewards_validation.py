"""Bad ground truths and options fail clearly (which field, what was expected): never a bare
TypeError deep inside, and never a valid 0. Plus the matching fixes from the issue-6 audit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reward_kit import InvalidRequest, RewardFunction
from reward_kit.rewards import (
    combine,
    cosine_length_reward,
    format_reward,
    gsm8k_reward,
    json_schema_reward,
    length_reward,
    list_comparison_reward,
    llm_judge_reward,
    math_verify_reward,
    multiple_choice_reward,
    reasoning_steps_reward,
    repetition_penalty_reward,
    string_check_reward,
    tag_count_reward,
    text_similarity_reward,
    tool_call_reward,
)
from reward_kit.service import ServeSettings, create_app


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


# (function, ground_truth, options, the start of the expected message)
BAD: list[tuple[RewardFunction[Any], Any, dict[str, Any], str]] = [
    (math_verify_reward, {"a": 1}, {}, "ground_truth: math_verify_reward expected"),
    (math_verify_reward, [1, 2], {}, "ground_truth: math_verify_reward expected"),
    (math_verify_reward, True, {}, "ground_truth: math_verify_reward expected"),
    (math_verify_reward, "1", {"match_types": 5}, "match_types: expected"),
    (math_verify_reward, "1", {"match_types": ["latex", "lates"]}, "match_types: unknown kind"),
    (math_verify_reward, "1", {"float_rounding": "6"}, "float_rounding: expected an integer"),
    (math_verify_reward, "1", {"strict": "yes"}, "strict: expected true or false"),
    (gsm8k_reward, {"answer": 4}, {}, "ground_truth: gsm8k_reward expected"),
    (gsm8k_reward, "4", {"tolerance": -1}, "tolerance: expected a number >= 0"),
    (gsm8k_reward, "4", {"tolerance": "tiny"}, "tolerance: expected a finite number"),
    (multiple_choice_reward, 2, {}, "ground_truth: multiple_choice_reward expected"),
    (multiple_choice_reward, None, {}, "ground_truth: multiple_choice_reward expected"),
    (multiple_choice_reward, "B", {"choices": ["A", "B"]}, "choices: expected the option"),
    (multiple_choice_reward, "B", {"choices": "AB1"}, "choices: expected the option"),
    (list_comparison_reward, {"a": 1}, {}, "ground_truth: expected a list of answers"),
    (list_comparison_reward, [1, {"x": 2}], {}, "ground_truth.1: expected a string or"),
    (list_comparison_reward, None, {}, "ground_truth: list_comparison_reward needs"),
    (list_comparison_reward, [1], {"order_matters": "no"}, "order_matters: expected true"),
    (format_reward, None, {"pattern": 5}, "pattern: expected a string"),
    (format_reward, None, {"full_match": 1}, "full_match: expected true or false"),
    (tag_count_reward, None, {"tags": []}, "tags: expected a list of tag names"),
    (tag_count_reward, None, {"tags": ["think", 3]}, "tags.1: expected a tag name"),
    (length_reward, None, {"min_length": -1}, "min_length: expected an integer >= 0"),
    (length_reward, None, {"min_length": "5"}, "min_length: expected an integer"),
    (length_reward, None, {"min_length": 5, "max_length": 2}, "max_length: expected an integer"),
    (length_reward, None, {"target_length": 0}, "target_length: expected an integer >= 1"),
    (length_reward, None, {"unit": "tokens"}, "unit: expected one of"),
    (length_reward, None, {"scaling": "log"}, "scaling: expected one of"),
    (cosine_length_reward, None, {"is_correct": True, "max_length": 0}, "max_length: expected"),
    (cosine_length_reward, None, {"is_correct": "yes"}, "is_correct: expected true or false"),
    (cosine_length_reward, None, {"is_correct": True, "min_value_wrong": "x"}, "min_value_wrong"),
    (cosine_length_reward, {"a": 1}, {}, "ground_truth: cosine_length_reward expected"),
    (repetition_penalty_reward, None, {"ngram_size": 0}, "ngram_size: expected an integer >= 1"),
    (repetition_penalty_reward, None, {"max_penalty": 1}, "max_penalty: expected a number <= 0"),
    (reasoning_steps_reward, None, {"min_steps": 0}, "min_steps: expected an integer >= 1"),
    (reasoning_steps_reward, None, {"pattern": "("}, "pattern: not a valid regular expression"),
    (json_schema_reward, [1, 2], {}, "ground_truth: json_schema_reward expected a JSON Schema"),
    (json_schema_reward, None, {"schema": 5}, "schema: json_schema_reward expected"),
    (json_schema_reward, "{bad", {}, "ground_truth: not valid JSON"),
    (json_schema_reward, {"type": "object"}, {"partial_credit": "no"}, "partial_credit:"),
    (tool_call_reward, 5, {}, "ground_truth: tool_call_reward expected a list of tool calls"),
    (tool_call_reward, {"x": 1}, {}, "ground_truth: tool_call_reward expected a list"),
    (tool_call_reward, [{"arguments": {}}], {}, "ground_truth.0: a tool call needs a 'name'"),
    (tool_call_reward, [{"name": "f", "arguments": 3}], {}, "ground_truth.0.arguments:"),
    (tool_call_reward, [{"name": "f", "arguments": "{bad"}], {}, "ground_truth.0.arguments:"),
    (tool_call_reward, [], {"match": "fuzzy"}, "match: expected one of"),
    (tool_call_reward, [], {"order_matters": None}, "order_matters: expected true or false"),
    (string_check_reward, {"a": "b"}, {}, "ground_truth: string_check_reward expected"),
    (string_check_reward, "x", {"operation": "startswith"}, "operation: expected one of"),
    (string_check_reward, "x", {"case_sensitive": "no"}, "case_sensitive: expected true"),
    (text_similarity_reward, 5, {}, "ground_truth: expected a reference string"),
    (text_similarity_reward, {"a": "b"}, {}, "ground_truth: expected a reference string"),
    (text_similarity_reward, [], {}, "ground_truth: expected a reference string"),
    (text_similarity_reward, ["ok", 5], {}, "ground_truth.1: expected a string"),
    (text_similarity_reward, "x", {"metric": "meteor"}, "metric: expected one of"),
]


@pytest.mark.parametrize(
    ("fn", "ground_truth", "options", "message"),
    BAD,
    ids=[f"{fn.name}-{i}" for i, (fn, *_) in enumerate(BAD)],
)
def test_bad_ground_truth_or_option_is_a_clear_error(
    fn: RewardFunction[Any], ground_truth: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        fn(say("The answer is 4"), ground_truth=ground_truth, **options)
    assert caught.value.message.startswith(message), caught.value.message


def test_the_judge_and_combine_check_their_inputs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_JUDGE_MODEL", "m")
    monkeypatch.setenv("RK_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RK_JUDGE_API_KEY_ENV", "")
    with pytest.raises(InvalidRequest, match=r"score_range: expected \[low, high\]"):
        asyncio.run(llm_judge_reward(say("4"), score_range="0-10"))
    with pytest.raises(InvalidRequest, match=r"score_range\.1: expected a finite number"):
        asyncio.run(llm_judge_reward(say("4"), score_range=[0, "ten"]))
    with pytest.raises(TypeError, match=r"combine: expected a dict \{reward function: weight\}"):
        combine([format_reward])  # type: ignore[arg-type]
    both = combine({gsm8k_reward: 1.0, list_comparison_reward: 1.0})
    with pytest.raises(InvalidRequest, match="ground_truth: gsm8k_reward expected"):
        both(say("4"), ground_truth={"a": 1})


def test_over_http_a_bad_ground_truth_is_a_per_item_invalid_status_not_a_score() -> None:
    settings = ServeSettings(targets=("reward_kit.rewards",), workers=1)
    items = [
        {"messages": say("the cat"), "ground_truth": "the cat"},
        {"messages": say("the cat"), "ground_truth": 5},
        {"messages": say("the cat"), "ground_truth": {"a": "b"}},
    ]
    with TestClient(create_app(settings=settings), base_url="http://localhost") as client:
        response = client.post("/batch_evaluate/text_similarity_reward", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ok", "invalid", "invalid"]
    assert results[0]["result"]["score"] == 1.0
    assert results[1]["result"] is None
    assert results[1]["error"]["code"] == "invalid_request"
    assert results[1]["error"]["message"].startswith("ground_truth: expected a reference string")


def test_a_non_option_string_is_an_invalid_score_not_a_zero() -> None:
    result = multiple_choice_reward(say("The answer is (B)"), ground_truth="4")
    assert result.is_score_valid is False


def test_tool_call_relaxed_matches_names_ignoring_case_and_separators() -> None:
    gold = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    for produced in ("Get_Weather", "get-weather", "GET WEATHER", " get_weather "):
        text = f'<tool_call>{{"name": "{produced}", "arguments": {{"city": "paris"}}}}</tool_call>'
        assert tool_call_reward(say(text), ground_truth=gold, match="relaxed").score == 1.0
        exact = tool_call_reward(say(text), ground_truth=gold, match="exact")
        assert exact.score == 0.0
    other = '<tool_call>{"name": "get_weathers", "arguments": {"city": "Paris"}}</tool_call>'
    assert tool_call_reward(say(other), ground_truth=gold, match="relaxed").score == 0.0


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("The answer is (b).", "B"),
        ("The answer is b.", "B"),
        ("Answer: b", "B"),
        ("\\boxed{b}", "B"),
        ("<answer>b</answer>", "B"),
        ("I pick (b) here.", "B"),
        ("The answer is a bit tricky, but (B) it is.", "B"),
        ("The answer is a bit tricky, but (C) it is.", "C"),
        ("The answer is B", "B"),
    ],
)
def test_multiple_choice_accepts_lowercase_option_markers(text: str, chosen: str) -> None:
    result = multiple_choice_reward(say(text), ground_truth="B")
    assert result.metrics["answer_extracted"].reason.startswith(chosen), result.reason
    assert result.score == float(chosen == "B")


@pytest.mark.parametrize("text", ["The answer is a bit unclear.", "I have a dog and a cat."])
def test_multiple_choice_lowercase_words_are_not_options(text: str) -> None:
    result = multiple_choice_reward(say(text), ground_truth="A")
    assert (result.score, result.metrics["answer_extracted"].score) == (0.0, 0.0)


def test_match_types_may_be_a_single_string() -> None:
    for kinds in ("latex", ["latex"]):
        result = math_verify_reward(say("$\\boxed{2}$"), ground_truth="$2$", match_types=kinds)
        assert (result.score, result.is_score_valid) == (1.0, True)
    expr = math_verify_reward(say("so 0.5"), ground_truth="1/2", match_types="expr")
    assert expr.score == 1.0


def test_tag_count_accepts_a_single_tag_name() -> None:
    assert tag_count_reward(say("<think>x</think>"), tags="think").score == 1.0
