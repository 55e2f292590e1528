"""Filtering, sorting and paging a run's samples on the server, over the run's columns.

The page asks for one page at a time, so opening a 100,000-sample run sends 50 rows, not
100,000 (bench/bench_view.py measures it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import RequestRejected
from ._load import Run

__all__ = ["SORTS", "query_samples", "sample_row"]

SORTS = ("order", "prompt", "score", "tokens")
_PREVIEW = 200
_MAX_LIMIT = 1000


def _bad(field: str, message: str) -> RequestRejected:
    return RequestRejected(f"{field}: {message}", code="invalid_query")


def _number(params: Mapping[str, str], field: str) -> float | None:
    value = params.get(field)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise _bad(field, f"expected a number, got {value!r}") from None


def _integer(params: Mapping[str, str], field: str, default: int, low: int, high: int) -> int:
    value = params.get(field)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(field, f"expected an integer, got {value!r}") from None
    if not low <= number <= high:
        raise _bad(field, f"must be between {low} and {high} (got {number})")
    return number


def query_samples(run: Run, params: Mapping[str, str]) -> dict[str, Any]:
    """One page of samples matching ``params``: ``status`` (``failed`` = any failure, else a
    generation or reward status), ``reward`` (the reward that ``min``/``max``, ``status`` and
    the ``score`` sort look at; default: every reward for status, the first for scores),
    ``min``/``max`` (score range, inclusive), ``prompt`` (prompt id substring), ``q`` (text in
    the prompt, response, reasons or error), ``sort`` (one of :data:`SORTS`), ``desc``,
    ``offset``, ``limit``.

    >>> from reward_kit.view._load import Run, _index
    >>> run = Run(name="r", path="r", kind="run", rows=[
    ...     {"prompt_id": "a", "sample_index": 0, "rewards": {"m": {"score": 1, "status": "ok"}}},
    ...     {"prompt_id": "b", "sample_index": 0, "rewards": {"m": {"score": None,
    ...                                                             "status": "timeout"}}}])
    >>> _index(run)
    >>> [r["prompt_id"] for r in query_samples(run, {"status": "timeout"})["rows"]]
    ['b']
    >>> query_samples(run, {"min": "0.5"})["total"]
    1
    """
    reward = params.get("reward") or None
    if reward is not None and reward not in run.rewards:
        raise _bad("reward", f"no reward {reward!r} in this run (it has: {', '.join(run.rewards)})")
    status = params.get("status") or None
    low, high = _number(params, "min"), _number(params, "max")
    prompt = params.get("prompt") or None
    text = (params.get("q") or "").lower() or None
    sort = params.get("sort") or "order"
    if sort not in SORTS:
        raise _bad("sort", f"expected one of {', '.join(SORTS)}, got {sort!r}")
    descending = params.get("desc") in ("1", "true")
    offset = _integer(params, "offset", 0, 0, 10**9)
    limit = _integer(params, "limit", 50, 1, _MAX_LIMIT)

    scored = reward or (run.rewards[0] if run.rewards else None)
    positions: range | list[int] = range(len(run.rows))
    if prompt is not None:
        positions = [p for p in positions if prompt in run.prompt_ids[p]]
    if status is not None:
        positions = _by_status(run, positions, status, reward)
    if (low is not None or high is not None) and scored is not None:
        column = run.scores[scored]
        lo = -float("inf") if low is None else low
        hi = float("inf") if high is None else high
        positions = [p for p in positions if (s := column[p]) is not None and lo <= s <= hi]
    if text is not None:
        haystack = run.haystack()
        positions = [p for p in positions if text in haystack[p]]
    ordered = _sorted(run, list(positions), sort, descending, scored)
    page = ordered[offset : offset + limit]
    return {
        "total": len(ordered),
        "offset": offset,
        "limit": limit,
        "rows": [sample_row(run, p) for p in page],
    }


def _by_status(run: Run, positions: Any, status: str, reward: str | None) -> list[int]:
    names = [reward] if reward else run.rewards
    columns = [run.statuses[name] for name in names]
    generation = run.generation_statuses
    if status == "failed":
        return [
            p for p in positions
            if generation[p] != "ok" or any(column[p] != "ok" for column in columns)
        ]  # fmt: skip
    return [p for p in positions if generation[p] == status or any(c[p] == status for c in columns)]


def _sorted(
    run: Run, positions: list[int], sort: str, descending: bool, scored: str | None
) -> list[int]:
    if sort == "order":
        return positions[::-1] if descending else positions
    if sort == "prompt":
        rows = run.rows
        return sorted(
            positions,
            key=lambda p: (run.prompt_ids[p], rows[p].get("sample_index") or 0),
            reverse=descending,
        )
    if sort == "tokens":
        values = [_tokens(run.rows[p]) for p in positions]
    else:
        column = run.scores[scored] if scored else [None] * len(run.rows)
        values = [column[p] for p in positions]
    # Samples without a value (no score: failed) go last in either direction.
    present = [(v, p) for v, p in zip(values, positions, strict=True) if v is not None]
    absent = [p for v, p in zip(values, positions, strict=True) if v is None]
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [p for _, p in present] + absent


def _tokens(row: dict[str, Any]) -> float | None:
    usage = (row.get("generation") or {}).get("usage") or {}
    value = usage.get("completion_tokens")
    return float(value) if isinstance(value, (int, float)) else None


def sample_row(run: Run, position: int) -> dict[str, Any]:
    """The table's line for one sample: ids, statuses, scores and a short preview."""
    row = run.rows[position]
    generation = row.get("generation") or {}
    preview = row.get("response")
    if preview is None:
        preview = generation.get("error") or ""
    return {
        "id": position,
        "prompt_id": run.prompt_ids[position],
        "sample_index": row.get("sample_index"),
        "generation_status": run.generation_statuses[position],
        "finish_reason": generation.get("finish_reason"),
        "tokens": _tokens(row),
        "rewards": {
            name: {"score": run.scores[name][position], "status": run.statuses[name][position]}
            for name in run.rewards
        },
        "preview": str(preview)[:_PREVIEW],
    }
