"""Reward functions the verl tests serve. They run in threads (no worker processes to spawn) and
put what they received in their reason, so a test can check exactly what crossed the wire."""

import json
import time

from reward_kit import EvaluateResult, MetricResult, reward_function


def _answer(messages, ground_truth, kwargs, metrics):
    text = messages[-1].text
    if ground_truth == "raise":
        raise ValueError("this sample was asked to fail")
    if isinstance(ground_truth, str) and ground_truth.startswith("sleep:"):
        time.sleep(float(ground_truth.removeprefix("sleep:")))
    received = {"roles": [m.role for m in messages], "kwargs": kwargs}
    return EvaluateResult(
        score=float(text.strip() == str(ground_truth).strip()),
        reason=json.dumps(received, sort_keys=True),
        is_score_valid=ground_truth != "invalid",
        metrics={name: MetricResult(score=value, reason="-") for name, value in metrics.items()},
    )


@reward_function(isolation="thread", timeout=10, metrics=["exact", "length"])
def judge(messages, ground_truth=None, **kwargs):
    """1.0 when the reply equals ground_truth. ground_truth "raise" fails, "invalid" gives an
    invalid score, "sleep:S" sleeps S seconds first. Declares its metrics; a reply with no
    digit returns no "length"."""
    text = messages[-1].text
    metrics = {"exact": float(text.strip() == str(ground_truth).strip())}
    if any(c.isdigit() for c in text):
        metrics["length"] = float(len(text))
    return _answer(messages, ground_truth, kwargs, metrics)


@reward_function(isolation="thread", timeout=10)
def loose(messages, ground_truth=None, **kwargs):
    """As judge, declaring no metrics: "digits" only for a reply with a digit, "chars" always."""
    text = messages[-1].text
    metrics = {"chars": float(len(text))}
    if any(c.isdigit() for c in text):
        metrics["digits"] = float(sum(c.isdigit() for c in text))
    return _answer(messages, ground_truth, kwargs, metrics)


@reward_function(isolation="thread", timeout=0.5, metrics=["exact", "length"])
def brief(messages, ground_truth=None, **kwargs):
    """As judge, with a 0.5 s server-side timeout: "sleep:2" runs past it."""
    return judge(messages, ground_truth, **kwargs)
