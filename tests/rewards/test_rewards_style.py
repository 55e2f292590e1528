"""Format and style rewards."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reward_kit import InvalidRequest
from reward_kit.rewards import (
    cosine_length_reward,
    format_reward,
    length_reward,
    reasoning_steps_reward,
    repetition_penalty_reward,
    tag_count_reward,
)


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("<think>\nadd\n</think>\n<answer>\n4\n</answer>", 1.0),
        ("<think>add</think><answer>4</answer>", 1.0),
        ("<answer>4</answer>", 0.0),
        ("<think>a</think><answer>4</answer> and more", 0.0),
    ],
)
def test_format_default(text: str, score: float) -> None:
    assert format_reward(say(text)).score == score


def test_format_custom_pattern_search_and_bad_regex() -> None:
    assert format_reward(say("foo 123 bar"), pattern=r"\d+", full_match=False).score == 1.0
    with pytest.raises(InvalidRequest, match="regular expression"):
        format_reward(say("x"), pattern="(")


def test_tag_count_gives_a_share_per_tag() -> None:
    full = tag_count_reward(say("<think>a</think><answer>b</answer>"))
    assert full.score == 1.0
    doubled = tag_count_reward(say("<think>a</think><think>b</think><answer>c</answer>"))
    assert doubled.score == 0.5
    assert doubled.metrics["<think>"].reason == "found 2 time(s), want 1"


def test_length_bounds_and_target() -> None:
    words = " ".join(["w"] * 50)
    assert length_reward(say(words), min_length=10, max_length=100).score == 1.0
    assert length_reward(say(words), min_length=100).score == 0.5
    assert length_reward(say(words), max_length=40).score == pytest.approx(0.75)
    assert length_reward(say(words), target_length=100, scaling="cosine").score == pytest.approx(
        math.cos(math.pi / 4)
    )
    assert length_reward(say("abcd"), target_length=4, unit="chars").score == 1.0
    with pytest.raises(InvalidRequest):
        length_reward(say(words), unit="tokens")  # type: ignore[arg-type]


def test_cosine_length_follows_the_open_r1_schedule() -> None:
    short, long = "x" * 10, "x" * 1000
    assert cosine_length_reward(say(short), is_correct=True).score > 0.99
    assert cosine_length_reward(say(long), is_correct=True).score == pytest.approx(0.5)
    assert cosine_length_reward(say(short), is_correct=False).score < -0.99
    assert cosine_length_reward(say(long), is_correct=False).score == pytest.approx(-0.5)
    half = cosine_length_reward(say("x" * 500), is_correct=True).score
    assert half == pytest.approx(0.75)


def test_cosine_length_uses_math_verify_without_is_correct() -> None:
    right = cosine_length_reward(say("$\\boxed{4}$"), ground_truth="4")
    assert right.metrics["correct"].score == 1.0
    with pytest.raises(InvalidRequest, match="is_correct or a ground_truth"):
        cosine_length_reward(say("4"))


def test_repetition_penalty() -> None:
    assert repetition_penalty_reward(say("the cat sat on the mat today")).score == 0.0
    repeated = repetition_penalty_reward(say("a b c a b c a b c"), max_penalty=-0.5)
    assert repeated.score == pytest.approx(-0.5 * (1 - 3 / 7))
    assert repetition_penalty_reward(say("hi")).score == 0.0
    with pytest.raises(InvalidRequest):
        repetition_penalty_reward(say("x"), max_penalty=1.0)


def test_reasoning_steps() -> None:
    assert reasoning_steps_reward(say("Step 1: a\nStep 2: b\nStep 3: c")).score == 1.0
    assert reasoning_steps_reward(say("First, a. Finally, b.")).score == pytest.approx(2 / 3)
    assert reasoning_steps_reward(say("just the answer")).score == 0.0
