"""verl custom reward: point verl at this file and it scores every sample on rk-serve.

    custom_reward_function.path=examples/verl/reward.py
    custom_reward_function.name=compute_score

Set RK_URL (default http://127.0.0.1:8000), RK_FUNCTION (default exact_match) and RK_API_KEY.
Run it directly to score one sample: python examples/verl/reward.py
"""

import os

from reward_kit.sdk.verl import compute_score_fn

compute_score = compute_score_fn(
    os.environ.get("RK_URL", "http://127.0.0.1:8000"),
    function=os.environ.get("RK_FUNCTION", "exact_match"),
    auth=os.environ.get("RK_API_KEY"),
)

if __name__ == "__main__":
    print(compute_score("openai/gsm8k", "<think>2+2</think><answer>4</answer>", "4"))
