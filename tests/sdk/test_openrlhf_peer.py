"""OpenRLHF's own code (0.11.2 from PyPI) against a real rk-serve: its remote-RM client, its
``.py`` reward_func loader, and the batch merge a training step does. See _openrlhf_harness.py
for exactly what runs unmodified and what stands in for the GPU side."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import FIXTURES, ROOT, rk_serve
from ._openrlhf_harness import logged, require_openrlhf, rollout, train_batch

REWARDS = str(FIXTURES / "openrlhf_rewards.py")
REWARD_FUNC = str(ROOT / "examples" / "openrlhf" / "reward_func.py")
KEY = "openrlhf-test-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _needs_openrlhf() -> None:
    require_openrlhf()


@pytest.fixture(scope="module")
def plain() -> Iterator[str]:
    """rk-serve at its defaults, without auth: OpenRLHF's HTTP client sends no credential."""
    with rk_serve(REWARDS) as url:
        yield url


@pytest.fixture(scope="module")
def fallback() -> Iterator[str]:
    with rk_serve(REWARDS, "--openrlhf-on-error", "-1") as url:
        yield url


@pytest.fixture(scope="module")
def keyed() -> Iterator[str]:
    with rk_serve(REWARDS, env={"RK_API_KEYS": KEY}) as url:
        yield url


def sample(question: str, answer: str, label: str) -> tuple[str, str, str]:
    return f"Q: {question} A:", f" {answer}" if answer else "", label


def values(outputs: list[dict[str, Any]], field: str) -> list[Any]:
    return [out[field] for out in outputs]


def test_samples_are_scored_through_openrlhfs_http_client(plain: str) -> None:
    outputs = rollout(
        f"{plain}/openrlhf/declared", [sample("2+2?", "4", "4"), sample("1+1?", "3", "2")]
    )
    assert values(outputs, "reward") == [[1.0], [0.0]]
    assert values(outputs, "scores") == [[1.0], [0.0]]
    assert values(outputs, "extra_logs") == [
        {"answer_found": [1.0], "length": [0.1]},
        {"answer_found": [1.0], "length": [0.1]},
    ]
    batch = train_batch(outputs)
    assert batch.rewards.flatten().tolist() == [1.0, 0.0]
    assert logged(batch, "answer_found") == [1.0, 1.0]


@pytest.mark.slow
def test_a_failed_sample_keeps_reward_none_and_openrlhf_cannot_merge_it(plain: str) -> None:
    # What docs/sdk.md says happens without --openrlhf-on-error: OpenRLHF retries (5 x 1 s),
    # keeps reward None, and its step then fails on the batch.
    outputs = rollout(
        f"{plain}/openrlhf/declared", [sample("2+2?", "4", "4"), sample("1+1?", "2", "FAIL")]
    )
    assert values(outputs, "reward") == [[1.0], None]
    assert outputs[1]["extra_logs"] == {}
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'size'"):
        train_batch(outputs)


def test_on_error_gives_failed_samples_the_fallback_and_a_flag(fallback: str) -> None:
    outputs = rollout(
        f"{fallback}/openrlhf/declared",
        [sample("2+2?", "4", "4"), sample("1+1?", "2", "FAIL"), sample("3+3?", "6", "INVALID")],
    )
    assert values(outputs, "reward") == [[1.0], [-1.0], [-1.0]]
    assert values(outputs, "scores") == [[1.0], [-1.0], [-1.0]]
    assert [out["extra_logs"]["reward_kit_failed"] for out in outputs] == [[0.0], [1.0], [1.0]]
    assert [out["extra_logs"]["answer_found"] for out in outputs] == [[1.0], [0.0], [0.0]]
    batch = train_batch(outputs)
    assert batch.rewards.flatten().tolist() == [1.0, -1.0, -1.0]
    assert logged(batch, "reward_kit_failed") == [0.0, 1.0, 1.0]


def test_metric_names_that_differ_between_samples_merge(plain: str) -> None:
    url = f"{plain}/openrlhf/declared"
    with_answer, without = sample("2+2?", "4", "4"), sample("1+1?", "", "2")
    outputs = rollout(url, [with_answer, without])
    assert values(outputs, "extra_logs") == [
        {"answer_found": [1.0], "length": [0.1]},
        {"answer_found": [0.0], "length": [0.0]},  # not returned: filled with 0.0
    ]
    batch = train_batch(outputs)
    assert logged(batch, "answer_found") == [1.0, 0.0]
    # The same answers with the key missing from one sample, as the function returned them:
    # OpenRLHF's own merge refuses them, so the filling above is what lets the step run.
    del outputs[1]["extra_logs"]["answer_found"]
    with pytest.raises(ValueError, match=r"Size of info\[answer_found\] \(1\) does not match"):
        train_batch(outputs)


def test_an_undeclared_function_whose_first_sample_fails_still_merges(fallback: str) -> None:
    # The first request this function ever gets fails: its row must have the same keys as
    # every later one, or OpenRLHF's merge fails (Size of info[answer_found] (1) ...).
    url = f"{fallback}/openrlhf/undeclared"
    first = rollout(url, [sample("1+1?", "2", "FAIL")])
    later = rollout(url, [sample("2+2?", "4", "4"), sample("3+3?", "", "6")])
    assert values(first + later, "extra_logs") == [
        {"reward_kit_failed": [1.0]},
        {"reward_kit_failed": [0.0]},
        {"reward_kit_failed": [0.0]},
    ]
    batch = train_batch(first + later)
    assert batch.rewards.flatten().tolist() == [-1.0, 1.0, 0.0]
    assert logged(batch, "reward_kit_failed") == [1.0, 0.0, 0.0]


@pytest.mark.slow
def test_400_concurrent_samples_at_default_settings_all_get_a_reward(plain: str) -> None:
    # OpenRLHF posts every sample of a rollout at once, one request each; rk-serve runs 64 at
    # a time by default and must queue the rest rather than refuse them.
    samples = [sample(f"{i}+0?", str(i), str(i)) for i in range(400)]
    outputs = rollout(f"{plain}/openrlhf/slow", samples)
    assert [out["reward"] for out in outputs] == [[1.0]] * 400
    assert train_batch(outputs).rewards.flatten().tolist() == [1.0] * 400


def test_the_reward_func_file_as_openrlhf_loads_it(
    keyed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_URL", keyed)
    monkeypatch.setenv("RK_FUNCTION", "declared")
    monkeypatch.setenv("RK_API_KEY", KEY)
    outputs = rollout(
        REWARD_FUNC,
        [sample("2+2?", "4", "4"), sample("1+1?", "", "2"), sample("3+3?", "6", "FAIL")],
    )
    assert [float(out["reward"]) for out in outputs[:2]] == [1.0, 0.0]
    # Raised by reward_func, caught by OpenRLHF: the sample keeps reward None.
    assert outputs[2]["reward"] is None
    assert [{k: float(v) for k, v in out["extra_logs"].items()} for out in outputs[:2]] == [
        {"answer_found": 1.0, "length": pytest.approx(0.1)},
        {"answer_found": 0.0, "length": 0.0},
    ]
    assert train_batch(outputs[:2]).rewards.flatten().tolist() == [1.0, 0.0]


def test_the_reward_func_file_with_on_error(keyed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_URL", keyed)
    monkeypatch.setenv("RK_FUNCTION", "declared")
    monkeypatch.setenv("RK_API_KEY", KEY)
    monkeypatch.setenv("RK_OPENRLHF_ON_ERROR", "-0.5")
    outputs = rollout(REWARD_FUNC, [sample("2+2?", "4", "4"), sample("1+1?", "2", "FAIL")])
    assert [float(out["reward"]) for out in outputs] == [1.0, -0.5]
    assert [float(out["extra_logs"]["reward_kit_failed"]) for out in outputs] == [0.0, 1.0]
    batch = train_batch(outputs)
    assert logged(batch, "reward_kit_failed") == [0.0, 1.0]
