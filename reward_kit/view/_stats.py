"""The two statistics the viewer computes itself: a seeded percentile bootstrap of a mean over
units (prompts), and a histogram.

``rk run`` writes its means, intervals and pass@k into summary.json and the viewer shows those;
this bootstrap is for what no summary holds: an ``rk eval`` file, a run killed before its
summary, and the paired difference of two runs (where the unit is the prompt both runs share).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

__all__ = ["bootstrap_mean_ci", "histogram"]

RESAMPLES = 2000
# Above this many units the resampling uses numpy if it is installed (same seed, other draws).
_NUMPY_ABOVE = 1000
_NUMPY_CHUNK = 4_000_000


def bootstrap_mean_ci(
    values: Sequence[float], *, seed: int = 0, resamples: int = RESAMPLES, confidence: float = 0.95
) -> tuple[float, float | None, float | None] | None:
    """(mean, low, high) of ``values`` (one per unit) with a percentile bootstrap interval
    drawn with ``seed``. None with no value; no interval (None) with one.

    >>> mean, low, high = bootstrap_mean_ci([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    >>> round(mean, 3), 0 <= low < mean < high <= 1
    (0.667, True)
    >>> bootstrap_mean_ci([2.0]), bootstrap_mean_ci([])
    ((2.0, None, None), None)
    """
    if not values:
        return None
    count = len(values)
    mean = math.fsum(values) / count
    if count == 1:
        return mean, None, None
    means = _numpy_means(values, seed, resamples) if count > _NUMPY_ABOVE else None
    if means is None:
        choices = random.Random(seed).choices
        means = sorted(math.fsum(choices(values, k=count)) / count for _ in range(resamples))
    tail = (1.0 - confidence) / 2
    return mean, _quantile(means, tail), _quantile(means, 1.0 - tail)


def _numpy_means(values: Sequence[float], seed: int, resamples: int) -> list[float] | None:
    """The resampled means drawn with numpy, when it is installed (it is not a dependency):
    2,000 resamples of 25,000 prompts take 19 s in pure Python and under 1 s this way."""
    try:
        import numpy
    except ImportError:
        return None
    array = numpy.asarray(values, dtype=float)
    rng = numpy.random.default_rng(seed)
    rows = max(1, _NUMPY_CHUNK // len(array))  # bounded memory: rows x values indices at once
    means: list[float] = []
    while len(means) < resamples:
        drawn = rng.integers(0, len(array), size=(min(rows, resamples - len(means)), len(array)))
        means.extend(array[drawn].mean(axis=1).tolist())
    return sorted(means)


def _quantile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def histogram(values: Sequence[float], *, bins: int = 20) -> dict[str, list[float] | list[int]]:
    """Counts of ``values`` in ``bins`` equal bins over [0, 1] when they all lie there (most
    rewards), else over their own range; the last bin includes its right edge.

    >>> histogram([0.0, 0.5, 1.0, 1.0], bins=2)
    {'edges': [0.0, 0.5, 1.0], 'counts': [1, 3]}
    """
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0
    if high == low:
        high = low + 1.0
    width = (high - low) / bins
    counts = [0] * bins
    for value in values:
        counts[min(int((value - low) / width), bins - 1)] += 1
    return {"edges": [low + i * width for i in range(bins + 1)], "counts": counts}
