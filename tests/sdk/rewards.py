"""Reward functions the SDK tests serve. They run in threads (no worker processes to spawn) and
report what they received, so a test can check exactly what crossed the wire."""

import json
import os

from reward_kit import EvaluateResult, MetricResult, reward_function


def _record(messages):
    # The TRL acceptance test reads this file to prove the server saw the completions.
    path = os.environ.get("RK_TEST_SEEN")
    if path:
        with open(path, "a", encoding="utf-8") as seen:
            seen.write(json.dumps(messages[-1].text) + "\n")


@reward_function(isolation="thread", timeout=10)
def echo(messages, ground_truth=None, behaviour="good", **kwargs):
    """Scores len(last message) / 100; the reason is a JSON dump of everything received.

    ``behaviour`` (a kwarg or dataset column) makes an item fail: "raise" raises, "invalid"
    returns is_score_valid=False.
    """
    _record(messages)
    if behaviour == "raise":
        raise ValueError("this item was asked to fail")
    text = messages[-1].text
    received = {
        "roles": [m.role for m in messages],
        "texts": [m.text for m in messages],
        "ground_truth": ground_truth,
        "kwargs": kwargs,
    }
    return EvaluateResult(
        score=len(text) / 100,
        reason=json.dumps(received, sort_keys=True),
        is_score_valid=behaviour != "invalid",
        metrics={
            "has_digit": MetricResult(score=float(any(c.isdigit() for c in text)), reason="d"),
            "length": MetricResult(score=min(1.0, len(text) / 100), reason="chars"),
        },
    )


@reward_function(isolation="thread", timeout=10)
def fails(messages, **kwargs):
    """Always raises: the error must reach the caller as an error, never as 0."""
    raise RuntimeError("broken reward")
