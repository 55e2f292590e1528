"""Two runs compared, prompt by prompt.

Prompts are matched by id. Per reward, each prompt contributes the difference of its mean
valid score (B minus A); the reported difference is their mean, with a paired bootstrap
interval over prompts (seeded, so the page and the export agree). A prompt wins, loses or ties
by that difference; it *flipped* when its pass rate (samples at or above the pass threshold)
is a majority in one run and not in the other. Prompts without a valid score in both runs are
left out and counted.
"""

from __future__ import annotations

import math
from typing import Any

from ._load import Run
from ._stats import bootstrap_mean_ci

__all__ = ["compare"]

_LISTED = 500  # changed prompts listed per reward, largest differences first


def _prompt_means(run: Run, name: str) -> dict[str, tuple[float, float, list[int]]]:
    """prompt id -> (mean valid score, pass rate, sample positions) where a score exists."""
    column, threshold = run.scores[name], run.thresholds[name]
    means = {}
    for prompt, positions in run.by_prompt.items():
        scores = [s for s in (column[p] for p in positions) if s is not None]
        if scores:
            passed = sum(s >= threshold for s in scores) / len(scores)
            means[prompt] = (math.fsum(scores) / len(scores), passed, positions)
    return means


def compare(a: Run, b: Run, *, seed: int = 0) -> dict[str, Any]:
    """The comparison page's data: per shared reward the paired difference (B - A) with its
    interval, win/loss/tie counts, and the prompts whose score changed (flips marked)."""
    shared = [name for name in a.rewards if name in b.rewards]
    prompts_a, prompts_b = set(a.by_prompt), set(b.by_prompt)
    rewards: dict[str, Any] = {}
    for name in shared:
        means_a, means_b = _prompt_means(a, name), _prompt_means(b, name)
        matched = [p for p in a.by_prompt if p in means_a and p in means_b]
        differences = [means_b[p][0] - means_a[p][0] for p in matched]
        estimate = bootstrap_mean_ci(differences, seed=seed)
        changed: list[dict[str, Any]] = []
        for prompt, difference in zip(matched, differences, strict=True):
            pass_a, pass_b = means_a[prompt][1] > 0.5, means_b[prompt][1] > 0.5
            if difference != 0 or pass_a != pass_b:
                changed.append({
                    "prompt_id": prompt,
                    "a": means_a[prompt][0], "b": means_b[prompt][0], "difference": difference,
                    "flipped": pass_a != pass_b,
                    "direction": "better" if difference > 0 else "worse" if difference < 0
                    else "same",
                })  # fmt: skip
        changed.sort(key=lambda c: (not c["flipped"], -abs(c["difference"]), c["prompt_id"]))
        rewards[name] = {
            "matched": len(matched),
            "unscored": len(prompts_a & prompts_b) - len(matched),
            "mean_a": _mean(means_a[p][0] for p in matched),
            "mean_b": _mean(means_b[p][0] for p in matched),
            "difference": estimate[0] if estimate else None,
            "ci": [estimate[1], estimate[2]] if estimate and estimate[1] is not None else None,
            "wins": sum(d > 0 for d in differences),
            "losses": sum(d < 0 for d in differences),
            "ties": sum(d == 0 for d in differences),
            "flipped": sum(c["flipped"] for c in changed),
            "changed": changed[:_LISTED],
            "changed_total": len(changed),
        }
    return {
        "a": a.name,
        "b": b.name,
        "seed": seed,
        "shared_prompts": len(prompts_a & prompts_b),
        "only_a": len(prompts_a - prompts_b),
        "only_b": len(prompts_b - prompts_a),
        "rewards_only_a": [n for n in a.rewards if n not in b.rewards],
        "rewards_only_b": [n for n in b.rewards if n not in a.rewards],
        "rewards": rewards,
    }


def _mean(values: Any) -> float | None:
    listed = list(values)
    return math.fsum(listed) / len(listed) if listed else None
