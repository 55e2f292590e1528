"""The reward the replica tests serve: it names the replica that scored each item.

Each rk-serve replica is started with REPLICA_NAME in its environment; the reason of every
result is that name, so a test sees which replica scored which item. Runs in threads: no worker
processes to start, and a sleeping item does not hold a core.
"""

import os
import time

from reward_kit import EvaluateResult, reward_function


@reward_function(isolation="thread", timeout=30)
def whoami(messages, ground_truth=None, id=None, ms=0, **kwargs):
    """Scores (id + 1) / 1000, or len(last message) / 1000 without an id (never 0, so an error
    read as 0 would show), after ``ms`` milliseconds of sleep; the reason is REPLICA_NAME."""
    if ms:
        time.sleep(float(ms) / 1000)
    text = messages[-1].text
    score = (int(id) + 1) / 1000 if id is not None else len(text) / 1000
    return EvaluateResult(score=score, reason=os.environ.get("REPLICA_NAME", "?"))
