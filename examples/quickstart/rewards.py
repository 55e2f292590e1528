"""Three small reward functions: serve them with `rk-serve examples/quickstart/rewards.py`."""

import re

from reward_kit import EvaluateResult, MetricResult, reward_function

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


@reward_function(timeout=5)
def exact_match(messages, ground_truth=None, **kwargs):
    """1.0 when the assistant's answer (inside <answer> tags if present) equals ground_truth."""
    text = messages[-1].text
    found = _ANSWER.search(text)
    answer = (found.group(1) if found else text).strip()
    expected = str(ground_truth).strip()
    match = answer == expected
    return EvaluateResult(
        score=1.0 if match else 0.0,
        reason=f"answer {answer!r} {'matches' if match else 'differs from'} {expected!r}",
        metrics={"answer_found": MetricResult(score=float(found is not None), reason="tags")},
    )


@reward_function(timeout=5)
def format_check(messages, **kwargs):
    """1.0 when the reply is <think>...</think> followed by <answer>...</answer>."""
    pattern = r"^\s*<think>.+?</think>\s*<answer>.+?</answer>\s*$"
    ok = re.match(pattern, messages[-1].text, re.DOTALL) is not None
    return EvaluateResult(score=float(ok), reason="well formed" if ok else "missing tags")


@reward_function(timeout=5)
def length_score(messages, target_words=50, **kwargs):
    """Peaks at 1.0 when the reply has `target_words` words; falls off linearly either side."""
    words = len(messages[-1].text.split())
    score = max(0.0, 1.0 - abs(words - target_words) / target_words)
    return EvaluateResult(score=score, reason=f"{words} words, target {target_words}")
