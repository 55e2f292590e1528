"""summary.json from the result lines, and the table printed at the end of a run.

Only valid scores count: a sample whose generation failed ("skipped"), or whose reward failed
or said its score is invalid, is counted in ``statuses`` and left out of the mean, the interval
and pass@k (a prompt with fewer than k valid samples has no pass@k, and none is reported when
no prompt has k: ``null``, never 0 or 1).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from ._stats import mean_ci, pass_hat_summary, pass_summary

__all__ = ["render_summary", "summarize", "summary_warnings"]


def summarize(
    rows: Sequence[dict[str, Any]],
    *,
    rewards: Sequence[tuple[str, float]],
    ks: Sequence[int],
    requests: int,
    cache_hits: int,
    wall_s: float,
    sampled: bool = True,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The summary.json of a run. ``rewards`` is (name, pass threshold) for each reward."""
    by_prompt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_prompt[row["prompt_id"]].append(row)
    summary: dict[str, Any] = {
        "samples": len(rows),
        "prompts": len(by_prompt),
        "rewards": {
            name: _reward(name, threshold, by_prompt, ks, confidence) for name, threshold in rewards
        },
        "generation": _generation(rows, by_prompt, requests, cache_hits, sampled),
        "wall_s": round(wall_s, 3),
    }
    return summary


def _valid(entry: dict[str, Any] | None) -> bool:
    return (
        entry is not None
        and entry.get("status") == "ok"
        and bool(entry.get("is_score_valid"))
        and isinstance(entry.get("score"), (int, float))
    )


def _reward(
    name: str,
    threshold: float,
    by_prompt: dict[str, list[dict[str, Any]]],
    ks: Sequence[int],
    confidence: float,
) -> dict[str, Any]:
    groups: list[list[float]] = []
    counts: list[tuple[int, int]] = []
    statuses: Counter[str] = Counter()
    metric_values: dict[str, list[float]] = defaultdict(list)
    for samples in by_prompt.values():
        scores: list[float] = []
        for row in samples:
            entry = row.get("rewards", {}).get(name)
            if entry is None:
                statuses["missing"] += 1
                continue
            if _valid(entry):
                statuses["ok"] += 1
                scores.append(float(entry["score"]))
                for metric, value in (entry.get("metrics") or {}).items():
                    score = value.get("score") if isinstance(value, dict) else value
                    valid = value.get("is_score_valid", True) if isinstance(value, dict) else True
                    if valid and isinstance(score, (int, float)) and math.isfinite(score):
                        metric_values[metric].append(float(score))
            elif entry.get("status") == "ok":
                statuses["score_invalid"] += 1
            else:
                statuses[str(entry.get("status"))] += 1
        groups.append(scores)
        counts.append((len(scores), sum(1 for s in scores if s >= threshold)))
    # Rewards score in [0, 1] by convention: clipped there when every score is (docs/run.md).
    interval = mean_ci(groups, confidence=confidence, bounds=(0.0, 1.0))
    mean = low = high = None
    if interval is not None:
        mean, low, high = (None if math.isnan(v) else v for v in interval)
    return {
        "mean": mean,
        "ci": [low, high],
        "count": sum(len(g) for g in groups),
        "pass_threshold": threshold,
        "pass_at_k": pass_summary(counts, ks),
        "pass_hat_k": pass_hat_summary(counts, ks),
        "statuses": dict(sorted(statuses.items())),
        "metrics": {m: math.fsum(v) / len(v) for m, v in sorted(metric_values.items())},
    }


def _generation(
    rows: Sequence[dict[str, Any]],
    by_prompt: dict[str, list[dict[str, Any]]],
    requests: int,
    cache_hits: int,
    sampled: bool,
) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    prompt_tokens = completion_tokens = 0
    for row in rows:
        generation = row.get("generation") or {}
        statuses[str(generation.get("status"))] += 1
        usage = generation.get("usage") or {}
        prompt_tokens += int(usage.get("prompt_tokens") or 0)
        completion_tokens += int(usage.get("completion_tokens") or 0)
    identical = 0
    if sampled:
        for samples in by_prompt.values():
            replies = [r["response"] for r in samples if r["generation"]["status"] == "ok"]
            if len(replies) >= 2 and len(set(replies)) == 1:
                identical += 1
    return {
        "requests": requests,
        "cache_hits": cache_hits,
        "errors": sum(n for status, n in statuses.items() if status != "ok"),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "statuses": dict(sorted(statuses.items())),
        "identical_groups": identical,
    }


def render_summary(summary: dict[str, Any], console: Any, *, title: str = "rk run") -> None:
    """The end-of-run report (rich) on ``console``: a small two-column table per reward
    function, so that it stays whole in an 80-column terminal whatever the number of k."""
    from rich.table import Table
    from rich.text import Text

    console.print(Text(title, style="bold"))
    for name, reward in summary["rewards"].items():
        table = Table(title=Text(name), title_justify="left", show_header=False, min_width=40)
        table.add_column("statistic", no_wrap=True)
        table.add_column("value", justify="right")
        low, high = reward["ci"]
        # Cells are text, not markup: "[n/a, n/a]" would otherwise read as a style tag.
        rows = [("mean [95% CI]", f"{_number(reward['mean'])} [{_number(low)}, {_number(high)}]")]
        for k, value in reward["pass_at_k"].items():
            hat = reward.get("pass_hat_k", {}).get(k)
            rows.append((f"pass@{k} / pass^{k}", f"{_number(value)} / {_number(hat)}"))
        rows.append(("valid scores", str(reward["count"])))
        failed = {s: n for s, n in reward["statuses"].items() if s != "ok"}
        rows.append(("not scored", ", ".join(f"{s} {n}" for s, n in failed.items()) or "0"))
        rows.extend((f"metric {m}", _number(v)) for m, v in reward.get("metrics", {}).items())
        for label, value in rows:
            table.add_row(Text(label), Text(value))
        console.print(table)
    generation = summary["generation"]
    console.print(
        f"{summary['samples']} samples of {summary['prompts']} prompts in "
        f"{summary['wall_s']:.1f}s; requests {generation['requests']}, cache hits "
        f"{generation['cache_hits']}, generation errors {generation['errors']}, tokens "
        f"{generation['prompt_tokens']} in / {generation['completion_tokens']} out",
        highlight=False,
    )
    failed = {s: n for s, n in generation["statuses"].items() if s != "ok"}
    if failed:
        console.print(
            "generation failures: " + ", ".join(f"{s} {n}" for s, n in failed.items()),
            style="red",
            highlight=False,
        )
    for warning in summary_warnings(summary):
        console.print(Text(warning, style="yellow"))


def summary_warnings(summary: dict[str, Any]) -> list[str]:
    """What the user must hear about a run even without the table (``--quiet``)."""
    identical = summary["generation"]["identical_groups"]
    if not identical:
        return []
    return [
        f"warning: {identical} prompts got identical replies in all their samples although "
        "sampling is on; the endpoint may ignore the seed or the temperature (pass@k over "
        "identical samples measures nothing)"
    ]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
