"""Trivial rewards for the HTTP benchmarks: the framework's cost is all there is to measure."""

from reward_kit import reward_function


@reward_function(isolation="inline")
def exact_match_inline(messages, ground_truth=None):
    """Exact match, run on the event loop (what a trivially cheap reward should declare)."""
    return 1.0 if messages[-1].text == ground_truth else 0.0


@reward_function
def exact_match(messages, ground_truth=None):
    """Exact match in the worker pool (the default isolation for a sync reward)."""
    return 1.0 if messages[-1].text == ground_truth else 0.0
