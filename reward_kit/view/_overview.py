"""A run at a glance: per reward the mean with its interval, pass@k over k, status counts,
a score histogram and per-metric means; generation usage, wall time and the manifest.

The mean, interval and pass@k are summary.json's (``rk run`` computed them with the prompt as
the unit); status counts and histograms are counted from the lines, so failures always show
(an ``error`` or ``timeout`` is a status here, never a score of 0).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from ._load import Run
from ._stats import bootstrap_mean_ci, histogram

__all__ = ["overview"]


def overview(run: Run) -> dict[str, Any]:
    """Everything the run page shows, as JSON."""
    summary = run.summary or {}
    generation = _generation(run, summary.get("generation") or {})
    return {
        "name": run.name,
        "path": run.path,
        "kind": run.kind,
        "samples": len(run.rows),
        "prompts": len(run.by_prompt),
        "torn": run.torn,
        "has_summary": run.summary is not None,
        "rewards": {
            name: _reward(run, name, (summary.get("rewards") or {}).get(name))
            for name in run.rewards
        },
        "generation": generation,
        "wall_s": summary.get("wall_s"),
        "manifest": run.manifest,
    }


def _reward(run: Run, name: str, summarized: dict[str, Any] | None) -> dict[str, Any]:
    column = run.scores[name]
    values = [s for s in column if s is not None]
    result: dict[str, Any] = {
        "statuses": dict(Counter(run.statuses[name]).most_common()),
        "histogram": histogram(values),
        "pass_threshold": run.thresholds[name],
    }
    if summarized is not None:
        for key in ("mean", "ci", "count", "pass_at_k", "pass_hat_k", "metrics"):
            result[key] = summarized.get(key)
        result["ci_method"] = "summary.json (prompt-clustered t interval)"
        return result
    per_prompt = []
    for positions in run.by_prompt.values():
        scores = [s for s in (column[p] for p in positions) if s is not None]
        if scores:
            per_prompt.append(math.fsum(scores) / len(scores))
    estimate = bootstrap_mean_ci(per_prompt)
    result.update(
        mean=math.fsum(values) / len(values) if values else None,
        ci=None if estimate is None or estimate[1] is None else [estimate[1], estimate[2]],
        count=len(values),
        pass_at_k=None,
        pass_hat_k=None,
        metrics=_metric_means(run, name),
        ci_method="bootstrap over prompts (no summary.json)",
    )
    return result


def _metric_means(run: Run, name: str) -> dict[str, float | None]:
    values: dict[str, list[float]] = defaultdict(list)
    for position, row in enumerate(run.rows):
        if run.statuses[name][position] != "ok":
            continue
        for metric, value in ((row.get("rewards") or {})[name].get("metrics") or {}).items():
            score = value.get("score") if isinstance(value, dict) else value
            if isinstance(score, (int, float)) and not isinstance(score, bool):
                values[metric].append(float(score))
    return {metric: math.fsum(v) / len(v) if v else None for metric, v in sorted(values.items())}


def _generation(run: Run, summarized: dict[str, Any]) -> dict[str, Any]:
    finish: Counter[str] = Counter()
    prompt_tokens = completion_tokens = cached = 0
    for row in run.rows:
        generation = row.get("generation")
        if not generation:
            continue
        finish[str(generation.get("finish_reason"))] += 1
        usage = generation.get("usage") or {}
        prompt_tokens += int(usage.get("prompt_tokens") or 0)
        completion_tokens += int(usage.get("completion_tokens") or 0)
        cached += bool(generation.get("cached"))
    counted = {
        "statuses": dict(Counter(run.generation_statuses).most_common()),
        "finish_reasons": dict(finish.most_common()),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cached_samples": cached,
    }
    # summary.json's counters (requests, cache hits of the last invocation) stay as written.
    return {**summarized, **counted} if run.kind == "run" else {}
