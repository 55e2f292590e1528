"""Upstream reward-kit 0.4.1's own tests (see NOTICE), run unmodified against this package.

The ones below fail on purpose: each is a deliberate difference listed in docs/compat.md.
They are strict xfails, so a difference that goes away (or a new failure) is noticed. See the
raw result with ``pytest tests/upstream --runxfail``.
"""

from __future__ import annotations

import pytest

DIFFERENCES = {
    "test_reward_function.py::TestRewardFunction::test_remote_mode": (
        "remote mode calls the evaluator through reward_kit.sdk (httpx, auth, retries), "
        "not requests, so patching reward_kit.reward_function.requests has no effect"
    ),
    "test_reward_function.py::TestRewardFunction::test_fireworks_hosted_mode": (
        "mode='fireworks_hosted' is refused: the Fireworks endpoint it called does not exist"
    ),
    "test_typed_interface.py::test_typed_interface_output_validation": (
        "MetricResult.reason is optional (defaults to ''), so a metric without one is valid"
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        key = item.nodeid.split("tests/upstream/", 1)[-1]
        if key in DIFFERENCES:
            item.add_marker(pytest.mark.xfail(reason=DIFFERENCES[key], strict=True))
