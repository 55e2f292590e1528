"""The statistics of a run: pass@k, pass^k and a mean whose interval treats the prompt as the unit.

n samples of one prompt are not independent (an easy prompt is solved by most of its samples, a
hard one by few), so an interval computed as if the n x prompts samples were independent is too
narrow: the prompt is the unit of the interval (a cluster), not the sample.

Pure Python on purpose: ``numpy``/``scipy`` are not dependencies of the ``run`` extra, and a
report over 10,000 prompts x 8 samples takes milliseconds this way (``bench/bench_run.py``).
"""

from __future__ import annotations

import functools
import math
import random
import statistics
from collections.abc import Callable, Sequence
from typing import Literal

__all__ = [
    "mean_ci",
    "pass_at_k",
    "pass_hat_k",
    "pass_hat_summary",
    "pass_summary",
    "t_quantile",
]

# Above this many degrees of freedom the Cornish-Fisher expansion of the t quantile agrees with
# the exact series to ~1e-10 and costs nothing; below it the series is cheap.
_SERIES_MAX_DF = 200
_BOOTSTRAP_RESAMPLES = 2000


def _check_counts(n: int, c: int, k: int) -> None:
    for field, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{field}: expected an integer, got {type(value).__name__}")
    if n < 0:
        raise ValueError(f"n: the number of samples cannot be negative (got {n})")
    if not 0 <= c <= n:
        raise ValueError(f"c: the number of successes must be between 0 and n={n} (got {c})")
    if k < 1:
        raise ValueError(f"k: must be at least 1 (got {k})")


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """The unbiased pass@k of Chen et al. 2021: the chance that at least one of k samples drawn
    without replacement from n samples, c of them correct, is correct: 1 - C(n-c, k)/C(n, k).

    Computed as the paper's product 1 - prod(1 - k/i for i in n-c+1..n), which neither
    overflows nor loses precision for large n. None (undefined, not 0 or 1) when n < k: fewer
    samples than k say nothing about k draws.

    >>> round(pass_at_k(10, 3, 1), 9), pass_at_k(10, 0, 5), pass_at_k(10, 8, 3), pass_at_k(2, 2, 4)
    (0.3, 0.0, 1.0, None)
    """
    _check_counts(n, c, k)
    if n < k:
        return None
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def pass_hat_k(n: int, c: int, k: int) -> float | None:
    """pass^k: the chance that all k samples drawn without replacement are correct,
    C(c, k)/C(n, k), as the product of (c - i)/(n - i) for i < k. None when n < k.

    >>> pass_hat_k(10, 5, 2), pass_hat_k(4, 4, 4), pass_hat_k(4, 1, 2), pass_hat_k(1, 1, 2)
    (0.2222222222222222, 1.0, 0.0, None)
    """
    _check_counts(n, c, k)
    if n < k:
        return None
    product = 1.0
    for i in range(k):
        product *= (c - i) / (n - i)  # reaches 0 exactly when c < k
    return product


def _summary(
    estimator: Callable[[int, int, int], float | None],
    counts: Sequence[tuple[int, int]],
    ks: Sequence[int],
) -> dict[str, float | None]:
    summary: dict[str, float | None] = {}
    for k in ks:
        values = []
        for n, c in counts:
            value = estimator(n, c, k)  # validates (n, c, k) even where n < k
            if value is not None:
                values.append(value)
        summary[str(k)] = math.fsum(values) / len(values) if values else None
    return summary


def pass_summary(counts: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[str, float | None]:
    """Per k (as a string key): the mean pass@k over the prompts with at least k samples,
    given each prompt's (valid samples n, correct samples c); None when no prompt has k.

    >>> pass_summary([(4, 1), (4, 0), (1, 1)], [1, 4, 8])
    {'1': 0.4166666666666667, '4': 0.5, '8': None}
    """
    return _summary(pass_at_k, counts, ks)


def pass_hat_summary(
    counts: Sequence[tuple[int, int]], ks: Sequence[int]
) -> dict[str, float | None]:
    """:func:`pass_summary` for pass^k (all k samples correct).

    >>> pass_hat_summary([(4, 4), (4, 2), (2, 0)], [1, 2, 3])
    {'1': 0.5, '2': 0.3888888888888889, '3': 0.5}
    """
    return _summary(pass_hat_k, counts, ks)


def mean_ci(
    groups: Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
    seed: int = 0,
    method: Literal["t", "bootstrap"] = "t",
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float, float] | None:
    """(mean, low, high): the mean over every sample, and a ``confidence`` interval with the
    prompt as the unit. ``groups`` holds one sequence of valid scores per prompt; empty groups
    (a prompt whose samples all failed) are left out. None when there is no score at all.

    ``method="t"`` (the default): the cluster-robust standard error of the mean, with the
    finite-cluster correction G/(G-1), and Student's t quantile on G-1 degrees of freedom for
    G prompts. This is inspect_ai's ``ci(method="t", cluster=...)`` and the eval-pipeline
    reference's default: it is exact arithmetic (no resampling noise), O(samples), and the t
    quantile keeps coverage near nominal with few prompts, where a percentile bootstrap is too
    narrow. With equal group sizes it is the t interval on the per-prompt means.

    ``method="bootstrap"``: percentile interval of 2,000 cluster-bootstrap resamples (whole
    prompts drawn with replacement, ``seed`` fixes them); O(2,000 x prompts) in pure Python.

    With a single prompt the spread between prompts cannot be estimated: low and high are NaN
    (write them as null). Scores all equal give the zero-width interval (mean, mean).

    ``bounds=(a, b)``: when every score lies in [a, b], so does the true mean, and the interval
    is clipped to [a, b] (the t interval is symmetric and can reach past the attainable range
    with few prompts or a mean near an end). Scores outside the bounds leave it unclipped.

    >>> mean, low, high = mean_ci([[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0]])
    >>> mean, round(low, 3), round(high, 3)
    (0.5625, -0.034, 1.159)
    >>> mean, low, high = mean_ci([[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0]],
    ...                           bounds=(0.0, 1.0))
    >>> round(low, 3), high
    (0.0, 1.0)
    >>> mean_ci([[], []]) is None
    True
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be between 0 and 1 (got {confidence})")
    if method not in ("t", "bootstrap"):
        raise ValueError(f"method: expected 't' or 'bootstrap', got {method!r}")
    if bounds is not None and not bounds[0] < bounds[1]:
        raise ValueError(f"bounds: expected (low, high) with low < high, got {bounds!r}")
    sums: list[float] = []
    sizes: list[int] = []
    within = bounds is not None
    for index, group in enumerate(groups):
        scores = [float(s) for s in group]
        if any(not math.isfinite(s) for s in scores):
            raise ValueError(f"groups[{index}]: scores must be finite numbers")
        if scores:
            sums.append(math.fsum(scores))
            sizes.append(len(scores))
            if within and bounds is not None:
                within = bounds[0] <= min(scores) and max(scores) <= bounds[1]
    if not sizes:
        return None
    total = sum(sizes)
    mean = math.fsum(sums) / total
    if len(sizes) == 1:
        return mean, math.nan, math.nan
    if method == "bootstrap":
        low, high = _cluster_bootstrap(sums, sizes, confidence, seed)
    else:
        clusters = len(sizes)
        squared = math.fsum((s - mean * m) ** 2 for s, m in zip(sums, sizes, strict=True))
        stderr = math.sqrt(clusters / (clusters - 1) * squared) / total
        half = t_quantile(confidence, clusters - 1) * stderr
        low, high = mean - half, mean + half
    if within and bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, low, high


def _cluster_bootstrap(
    sums: list[float], sizes: list[int], confidence: float, seed: int
) -> tuple[float, float]:
    rng = random.Random(seed)
    clusters = len(sizes)
    means = []
    for _ in range(_BOOTSTRAP_RESAMPLES):
        drawn = [int(rng.random() * clusters) for _ in range(clusters)]
        means.append(math.fsum(sums[i] for i in drawn) / sum(sizes[i] for i in drawn))
    means.sort()
    tail = (1.0 - confidence) / 2
    return _sorted_quantile(means, tail), _sorted_quantile(means, 1.0 - tail)


def _sorted_quantile(ordered: list[float], q: float) -> float:
    """The q quantile of sorted values, interpolated linearly (numpy's default)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@functools.lru_cache(maxsize=256)
def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student's t critical value: P(|T| <= t) = ``confidence`` with ``df``
    degrees of freedom (scipy's ``t.ppf((1 + confidence) / 2, df)``).

    >>> [round(t_quantile(0.95, df), 3) for df in (1, 10, 1000)]
    [12.706, 2.228, 1.962]
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df: must be a positive integer (got {df!r})")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be between 0 and 1 (got {confidence})")
    if df == 1:
        return math.tan(math.pi * confidence / 2)
    if df > _SERIES_MAX_DF:
        return _cornish_fisher(statistics.NormalDist().inv_cdf((1 + confidence) / 2), df)
    # P(|T| <= sqrt(df) tan(theta)) rises from 0 to 1 as theta goes from 0 to pi/2: bisect theta.
    low, high = 0.0, math.pi / 2
    for _ in range(64):
        middle = (low + high) / 2
        if _central_probability(middle, df) < confidence:
            low = middle
        else:
            high = middle
    return math.sqrt(df) * math.tan((low + high) / 2)


def _central_probability(theta: float, df: int) -> float:
    """P(|T| <= sqrt(df) tan(theta)) for integer df >= 2, by the finite series of Abramowitz and
    Stegun 26.7.3 (odd df) and 26.7.4 (even df): exact up to rounding."""
    sine, cosine2 = math.sin(theta), math.cos(theta) ** 2
    term = total = 1.0
    if df % 2 == 0:
        for j in range(1, (df - 2) // 2 + 1):
            term *= (2 * j - 1) / (2 * j) * cosine2
            total += term
        return sine * total
    for j in range(1, (df - 3) // 2 + 1):
        term *= (2 * j) / (2 * j + 1) * cosine2
        total += term
    return 2 / math.pi * (theta + sine * math.sqrt(cosine2) * total)


def _cornish_fisher(z: float, df: int) -> float:
    """The t quantile from the normal one z, by the Cornish-Fisher expansion in 1/df
    (Abramowitz and Stegun 26.7.5); its error is O(df^-5)."""
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
