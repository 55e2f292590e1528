"""OpenRLHF reward_func: point OpenRLHF at this file and it scores every sample on rk-serve.

    python -m openrlhf.cli.train_ppo_ray ... --reward.remote_url examples/openrlhf/reward_func.py
    (OpenRLHF 0.10.1 and earlier: --remote_rm_url examples/openrlhf/reward_func.py)

Unlike the HTTP route, this goes through reward-kit's SDK: it sends a credential, retries with
backoff and batches the samples of a call. Set in the trainer's environment:

* RK_URL: the evaluator (default http://127.0.0.1:8000);
* RK_FUNCTION: the reward function to call (default exact_match);
* RK_API_KEY: its key (sent over https or to loopback; for plain http to another host pass
  auth=os.environ["RK_API_KEY"] below);
* RK_OPENRLHF_ON_ERROR: unset, a sample that cannot be scored raises and OpenRLHF keeps its
  reward None; a number gives such samples that reward, flagged reward_kit_failed = 1.0;
* RK_METRIC_NAMES: the metrics to log, comma-separated (exact,length): with a fallback set,
  only these are sent (every sample, failed or not, must carry the same keys).

Run it directly to score one sample: python examples/openrlhf/reward_func.py
"""

import math
import os

from reward_kit.sdk.openrlhf import reward_func_fn


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


_reward = reward_func_fn(
    os.environ.get("RK_URL", "http://127.0.0.1:8000"),
    function=os.environ.get("RK_FUNCTION", "exact_match"),
    on_error=_on_error("RK_OPENRLHF_ON_ERROR"),
    metrics=_metrics(),
)


def reward_func(queries, prompts, labels, **kwargs):
    """OpenRLHF's contract: {"rewards", "scores", "extra_logs"} as tensors, one per query."""
    # A plain function, not the object itself: OpenRLHF 0.8 hands it to ray.remote.
    return _reward(queries, prompts, labels)


if __name__ == "__main__":
    prompt = "<|user|>What is 2+2? Answer in <answer></answer>.<|assistant|>"
    print(reward_func([prompt + "<answer>4</answer>"], [prompt], ["4"]))
