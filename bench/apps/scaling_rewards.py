"""Rewards for the scale-out benchmark: a fixed amount of CPU work, and a trivial one.

``work`` does ``n`` iterations of integer arithmetic rather than spinning for a wall-clock
time: two processes sharing one core then each take twice as long, as real rewards do.
"""

from reward_kit import reward_function


@reward_function(timeout=60)
def work(messages, ground_truth=None, n=100_000, **kwargs):
    """``n`` iterations of pure-Python arithmetic (the benchmark sizes n to ~5 ms)."""
    total = 0
    for i in range(int(n)):
        total += i * i % 7
    return 1.0 if total >= 0 else 0.0


@reward_function
def exact_match(messages, ground_truth=None, **kwargs):
    """Exact match in the worker pool (the default isolation for a sync reward)."""
    return 1.0 if messages[-1].text == ground_truth else 0.0
