"""The run directory: ``results.jsonl`` appended as samples finish, read back tolerantly, and
never silently overwritten.

Each line is written to the OS as soon as the pipeline flushes (several times a second), so a
``kill -9`` loses at most the lines of the last fraction of a second, and those samples are in
the cache. A kill in the middle of a write leaves a torn last line: reading skips it (and only
a last line may be torn; a bad line elsewhere is an error, not something to guess about).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

from .._errors import ConfigurationError
from .._extras import require

__all__ = [
    "MANIFEST",
    "RESULTS",
    "SUMMARY",
    "ResultsWriter",
    "prepare_run_dir",
    "read_results",
    "rewrite_results",
]

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
MANIFEST = "manifest.json"

RunDirMode = Literal["new", "resume", "rescore", "overwrite"]


def prepare_run_dir(out: Path, *, mode: RunDirMode) -> None:
    """Refuse to reuse a run directory that has results unless the caller said how."""
    existing = [p.name for p in (out / RESULTS, out / SUMMARY, out / MANIFEST) if p.exists()]
    if mode == "new" and existing:
        raise ConfigurationError(
            f"run directory {str(out)!r} already holds a run ({', '.join(existing)}); "
            "use --resume to finish it, --rescore to score its generations again, "
            "--overwrite to replace it, or another --out"
        )
    # A run killed before its first line was written has a manifest and nothing else: resuming
    # it is starting it.
    if (mode == "resume" and not existing) or (mode == "rescore" and not (out / RESULTS).exists()):
        raise ConfigurationError(f"--{mode}: no {RESULTS} in {str(out)!r} (nothing to {mode})")
    if mode == "overwrite":
        for name in existing:
            (out / name).unlink()
        stale = out / f"{RESULTS}.tmp"
        if stale.exists():
            stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if mode == "rescore" and (out / MANIFEST).exists():
        # The manifest is rewritten for the rescored run; the one that made the generations stays.
        shutil.copyfile(out / MANIFEST, out / "manifest.generation.json")


def read_results(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The result lines of a run, and whether a torn last line was dropped."""
    if not path.exists():
        return [], False
    loads = require("orjson", extra="run", feature="rk run").loads
    data = path.read_bytes()
    lines = data.split(b"\n")
    rows: list[dict[str, Any]] = []
    torn = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except ValueError:  # orjson.JSONDecodeError is a ValueError
            is_last = all(not rest.strip() for rest in lines[number:])
            if is_last:
                torn = True  # a write cut short by a crash
                break
            raise ConfigurationError(
                f"{path}: line {number} is not valid JSON and is not the last line; the "
                "results file is damaged"
            ) from None
        if not isinstance(row, dict) or "prompt_id" not in row or "sample_index" not in row:
            raise ConfigurationError(f"{path}: line {number} is not a result line")
        rows.append(row)
    return rows, torn


def rewrite_results(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the results file with ``rows``, atomically (a crash leaves the old or new one)."""
    orjson = require("orjson", extra="run", feature="rk run")
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as file:
        file.write(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


class ResultsWriter:
    """Appends result lines; :meth:`flush` hands them to the OS in one write."""

    def __init__(self, path: Path, *, fsync: Literal["close", "always"] = "close") -> None:
        self._orjson = require("orjson", extra="run", feature="rk run")
        self.path = path
        self._fsync_always = fsync == "always"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pending: list[bytes] = []
        self.written = 0
        self.rows: list[dict[str, Any]] = []  # what this writer wrote, for the summary

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._pending.append(self._orjson.dumps(row) + b"\n")

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        count = len(self._pending)
        self._pending = []
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.written += count
        if self._fsync_always:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush()
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
