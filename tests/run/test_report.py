"""The end-of-run report as a terminal shows it."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from reward_kit.run import render_summary


def _reward(**fields: Any) -> dict[str, Any]:
    return {
        "mean": 0.41,
        "ci": [0.3, 0.52],
        "count": 118,
        "pass_threshold": 1.0,
        "pass_at_k": {"1": 0.41, "4": 0.77, "16": 0.9375},
        "pass_hat_k": {"1": 0.41, "4": 0.12, "16": 0.0625},
        "statuses": {"ok": 118, "skipped": 2},
        "metrics": {"length": 0.33},
        **fields,
    }


def _render(summary: dict[str, Any], width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO(), record=True)
    render_summary(summary, console, title="rk run: runs/[x]")
    return console.export_text()


def test_every_value_is_whole_in_an_80_column_terminal() -> None:
    summary = {
        "samples": 120,
        "prompts": 30,
        "rewards": {
            "exact_match": _reward(),
            "a_rather_long_reward_function_name_for_the_table": _reward(
                mean=None,
                ci=[None, None],
                count=0,
                pass_at_k={"1": None, "4": None, "16": None},
                pass_hat_k={"1": None, "4": None, "16": None},
                statuses={"error": 100, "timeout": 3, "skipped": 2},
                metrics={},
            ),
        },
        "generation": {
            "requests": 124,
            "cache_hits": 0,
            "errors": 2,
            "prompt_tokens": 4100,
            "completion_tokens": 9000,
            "statuses": {"ok": 118, "rate_limit": 2},
            "identical_groups": 0,
        },
        "wall_s": 41.2,
    }
    text = _render(summary)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for expected in (
        "rk run: runs/[x]",
        "exact_match",
        "a_rather_long_reward_function_name_for_the_table",
        "0.4100 [0.3000, 0.5200]",
        "pass@16 / pass^16",
        "0.9375 / 0.0625",
        "0.7700 / 0.1200",
        "n/a [n/a, n/a]",
        "n/a / n/a",
        "skipped 2",
        "error 100, timeout 3, skipped 2",
        "metric length",
        "0.3300",
    ):
        assert expected in text, expected


def test_the_progress_bar_is_whole_in_an_80_column_terminal() -> None:
    from reward_kit.run._progress import Progress

    out = io.StringIO()
    console = Console(width=80, file=out, force_terminal=True, color_system=None)
    with Progress(total=20_000, label="generate+score", enabled=True, console=console) as bar:
        bar.update(done=10_000, rate=21_345.6, cached=10_000, errors=123)
    line = out.getvalue().split("\r")[-1]
    assert "…" not in line
    for expected in ("generate+score", "10000/20000", "21346/s", "cached 10000", "err 123", "eta"):
        assert expected in line, expected
