"""Rewards for the HTTP-layer security tests: scores that are not numbers, and a slow one."""

import math
import time

from reward_kit import reward_function


@reward_function(timeout=10)
def nan_metric(messages, **kwargs):
    return {"score": 1.0, "metrics": {"exact": {"score": math.nan, "reason": "0/0"}}}


@reward_function(timeout=10)
def inf_metric(messages, **kwargs):
    return {"score": 1.0, "metrics": {"exact": {"score": -math.inf}}, "is_score_valid": False}


@reward_function(timeout=10)
def nan_score(messages, **kwargs):
    return math.nan


@reward_function(timeout=10)
def nan_step(messages, **kwargs):
    return {"score": 1.0, "step_outputs": [{"step_index": 0, "base_reward": math.inf}]}


@reward_function(timeout=30)
def sleepy(messages, seconds=0.0, **kwargs):
    time.sleep(float(seconds))
    return 1.0
