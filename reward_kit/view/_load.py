"""Reading what ``rk view`` shows: an ``rk run`` directory, or an ``rk eval`` results file.

Both become a :class:`Run`: the raw result lines (the sample view shows them as written) and
column arrays over them (prompt id, statuses, scores) that filtering and sorting scan without
touching the dicts again, so a 100,000-sample run is filtered in milliseconds.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from .._extras import require

__all__ = ["Run", "load_run", "reward_status"]

_RESULTS, _SUMMARY, _MANIFEST = "results.jsonl", "summary.json", "manifest.json"


def reward_status(entry: dict[str, Any] | None) -> str:
    """One reward's status on one sample: ``ok`` only for a valid score; ``score_invalid``
    when the reward said its score is not valid; else the engine's status (``error``,
    ``timeout``...), ``skipped`` (the generation failed) or ``missing``. Never folded into 0.

    >>> reward_status({"status": "ok", "is_score_valid": True, "score": 0.0})
    'ok'
    >>> reward_status({"status": "ok", "is_score_valid": False, "score": 0.0}), reward_status(None)
    ('score_invalid', 'missing')
    """
    if entry is None:
        return "missing"
    status = str(entry.get("status") or "missing")
    if status != "ok":
        return status
    if not entry.get("is_score_valid", True) or not isinstance(entry.get("score"), (int, float)):
        return "score_invalid"
    return "ok"


@dataclass(kw_only=True)
class Run:
    """One run as the viewer holds it: lines, summary, manifest, and columns for queries."""

    name: str
    path: str
    kind: str  # "run" (an rk run directory) or "eval" (an rk eval results file)
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    torn: bool = False
    rewards: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    prompt_ids: list[str] = field(default_factory=list)
    generation_statuses: list[str] = field(default_factory=list)
    scores: dict[str, list[float | None]] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    by_prompt: dict[str, list[int]] = field(default_factory=dict)
    _haystack: list[str] | None = None

    def haystack(self) -> list[str]:
        """Lower-cased searchable text per sample, built on the first text search."""
        if self._haystack is None:
            self._haystack = [_searchable(row) for row in self.rows]
        return self._haystack


def load_run(path: str | Path) -> Run:
    """A run directory (``results.jsonl`` + ``summary.json`` + ``manifest.json``) or an
    ``rk eval`` results file (JSONL of ``{line, function, status, result, error}``)."""
    # Building 100,000 rows of nested dicts sets off the cyclic collector again and again
    # for nothing (JSON makes no cycles): paused, a 100k-sample run loads 3-4x faster.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(Path(path))
    finally:
        if paused:
            gc.enable()


def _load(path: Path) -> Run:
    if path.is_dir():
        results = path / _RESULTS
        if not results.exists():
            raise ConfigurationError(f"{str(path)!r} is not a run directory: it has no {_RESULTS}")
        rows, torn = _read_jsonl(results, tolerate_torn=True)
        for number, row in enumerate(rows, start=1):
            if "prompt_id" not in row or "sample_index" not in row:
                raise ConfigurationError(f"{results}: line {number} is not an rk run result line")
        summary = _read_json(path / _SUMMARY)
        manifest = _read_json(path / _MANIFEST)
        run = Run(
            name=_run_name(path, manifest), path=str(path), kind="run", rows=rows,
            summary=summary, manifest=manifest, torn=torn,
        )  # fmt: skip
    elif path.is_file():
        lines, torn = _read_jsonl(path, tolerate_torn=False)
        rows = [_from_eval(line, path, number) for number, line in enumerate(lines, start=1)]
        run = Run(name=path.name, path=str(path), kind="eval", rows=rows)
    else:
        raise ConfigurationError(f"{str(path)!r}: no such run directory or results file")
    _index(run)
    return run


def _run_name(path: Path, manifest: dict[str, Any] | None) -> str:
    model = ((manifest or {}).get("config") or {}).get("model") or {}
    name = model.get("name") if isinstance(model, dict) else None
    return f"{path.name} ({name})" if name else path.name


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"{path}: cannot read it as JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{path}: expected a JSON object")
    return value


def _read_jsonl(path: Path, *, tolerate_torn: bool) -> tuple[list[dict[str, Any]], bool]:
    loads = require("orjson", extra="view", feature="rk view").loads
    lines = path.read_bytes().split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except ValueError:
            if tolerate_torn and number == len(lines):
                return rows, True  # a run killed mid-write: rk run drops this line too
            raise ConfigurationError(f"{path}: line {number} is not valid JSON") from None
        if not isinstance(row, dict):
            raise ConfigurationError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    return rows, False


def _from_eval(line: dict[str, Any], path: Path, number: int) -> dict[str, Any]:
    """An rk eval line as a run line: one sample per input row, its function the reward."""
    if "status" not in line or ("line" not in line and "index" not in line):
        raise ConfigurationError(f"{path}: line {number} is not an rk eval result line")
    result = line.get("result") or {}
    entry: dict[str, Any] = {
        "score": result.get("score"),
        "is_score_valid": result.get("is_score_valid", True),
        "reason": result.get("reason"),
        "metrics": result.get("metrics") or {},
        "status": line["status"],
    }
    if line.get("error"):
        entry["error"] = line["error"]
    return {
        "prompt_id": f"line {line.get('line', line.get('index'))}",
        "sample_index": 0,
        "rewards": {str(line.get("function") or "reward"): entry},
        "duration_ms": line.get("duration_ms"),
    }


def _index(run: Run) -> None:
    names: dict[str, None] = dict.fromkeys((run.summary or {}).get("rewards") or {})
    for row in run.rows:
        names.update(dict.fromkeys(row.get("rewards") or {}))
    run.rewards = list(names)
    summary_rewards = (run.summary or {}).get("rewards") or {}
    run.thresholds = {
        name: float((summary_rewards.get(name) or {}).get("pass_threshold") or 1.0)
        for name in run.rewards
    }
    run.scores = {name: [] for name in run.rewards}
    run.statuses = {name: [] for name in run.rewards}
    columns = [(name, run.scores[name], run.statuses[name]) for name in run.rewards]
    for position, row in enumerate(run.rows):
        prompt_id = str(row.get("prompt_id"))
        run.prompt_ids.append(prompt_id)
        run.by_prompt.setdefault(prompt_id, []).append(position)
        generation = row.get("generation") or {}
        run.generation_statuses.append(str(generation.get("status") or "ok"))
        entries = row.get("rewards") or {}
        for name, scores, statuses in columns:
            entry = entries.get(name)
            status = reward_status(entry)
            statuses.append(status)
            scores.append(float(entry["score"]) if status == "ok" and entry else None)
    for positions in run.by_prompt.values():
        positions.sort(key=lambda p: run.rows[p].get("sample_index") or 0)


def _searchable(row: dict[str, Any]) -> str:
    parts = [str(row.get("prompt_id")), str(row.get("response") or "")]
    for message in row.get("messages") or []:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            parts.append(message["content"])
    for turn in (row.get("env") or {}).get("turns") or []:
        if isinstance(turn, dict) and isinstance(turn.get("content"), str):
            parts.append(turn["content"])
    for entry in (row.get("rewards") or {}).values():
        if isinstance(entry, dict) and entry.get("reason"):
            parts.append(str(entry["reason"]))
    error = (row.get("generation") or {}).get("error")
    if error:
        parts.append(str(error))
    return "\n".join(parts).lower()
