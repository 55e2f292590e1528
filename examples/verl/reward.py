"""verl custom reward: point verl at this file and it scores every sample on rk-serve.

    custom_reward_function.path=examples/verl/reward.py
    custom_reward_function.name=compute_score         # per-sample managers (naive, dapo...)
    custom_reward_function.name=compute_score_batch   # reward_model.reward_manager=batch

Set RK_URL (default http://127.0.0.1:8000), RK_FUNCTION (default exact_match) and RK_API_KEY;
RK_ON_ERROR=<number> scores a sample that cannot be evaluated that number (flagged
reward_kit_failed) instead of failing the step; RK_METRIC_NAMES=exact,length names the metrics
to log (with RK_ON_ERROR set, only these are sent: every sample must carry the same keys).
Run it directly to score one sample and a batch: python examples/verl/reward.py
"""

import math
import os

from reward_kit.sdk.verl import batch_compute_score_fn, compute_score_fn


def _on_error(name):
    """The fallback reward from ${name}: unset is "raise", else a finite number."""
    text = os.environ.get(name, "").strip()
    if not text:
        return "raise"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(
            f"{name}={text!r}: expected a finite number (the fallback reward), or unset"
        )
    return value


def _metrics():
    """The metric keys from $RK_METRIC_NAMES: a comma-separated list of names, or unset."""
    text = os.environ.get("RK_METRIC_NAMES", "").strip()
    if not text:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ValueError(f"RK_METRIC_NAMES={text!r}: expected metric names separated by commas")
    return names


options = {
    "function": os.environ.get("RK_FUNCTION", "exact_match"),
    "auth": os.environ.get("RK_API_KEY"),
    "on_error": _on_error("RK_ON_ERROR"),
    "metrics": _metrics(),
}
url = os.environ.get("RK_URL", "http://127.0.0.1:8000")
compute_score = compute_score_fn(url, **options)
compute_score_batch = batch_compute_score_fn(url, **options)

if __name__ == "__main__":
    print(compute_score("openai/gsm8k", "<think>2+2</think><answer>4</answer>", "4"))
    print(
        compute_score_batch(
            data_sources=["openai/gsm8k", "openai/gsm8k"],
            solution_strs=["<answer>4</answer>", "<answer>5</answer>"],
            ground_truths=["4", "4"],
            extra_infos=[{}, {}],
        )
    )
