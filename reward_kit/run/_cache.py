"""The generation cache: content-addressed, SQLite (WAL), JSON values, shared by every run.

The key is the sha256 of the canonical JSON of everything that changes the answer: the
endpoint, the model, the messages after the system prompt, every sampling parameter, tools,
extra body fields, the sample's seed and index, and a user namespace. The components are stored
beside the value, so ``rk cache stats`` can say what is in it. Values are JSON, never pickle.

Several runs may share one cache at once: WAL lets readers and one writer work together, and
writers wait for each other (``busy_timeout``). Writes are batched into one transaction per
flush (the pipeline flushes a few times a second and at the end).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .._errors import ConfigurationError
from .._extras import require
from ._config import CacheMode
from ._dataset import canonical_json

__all__ = ["GenerationCache", "cache_key", "default_cache_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    components TEXT NOT NULL,
    value TEXT NOT NULL
)
"""
_FORMAT = 1  # part of every key: a change in what is stored starts a fresh key space
_LOOKUP_CHUNK = 500  # SQLite's default limit on bound parameters is 999 (older builds)


@functools.cache
def _orjson() -> ModuleType:
    # Imported once: cache_key runs for every sample, and import_module is not free.
    return require("orjson", extra="run", feature="rk run")


def default_cache_path() -> Path:
    """``$RK_CACHE_DIR``, else ``$XDG_CACHE_HOME/reward-kit``, else ``~/.cache/reward-kit``."""
    folder = os.environ.get("RK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "reward-kit"
    )
    return Path(folder) / "generations.sqlite3"


def cache_key(components: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, compact, UTF-8) of the key's components and
    the cache format. orjson: the stdlib encoder was a fifth of a fully cached run's time."""
    orjson = _orjson()
    text = orjson.dumps({"format": _FORMAT, **components}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()


class GenerationCache:
    """One cache file. ``mode`` "on" reads and writes, "read" never writes, "refresh" never
    reads, "off" does neither (and opens no file)."""

    def __init__(self, path: str | Path | None = None, *, mode: CacheMode = "on") -> None:
        self.mode = mode
        self.path = Path(path).expanduser() if path else default_cache_path()
        self.hits = 0
        self._pending: list[tuple[str, str, float, str, str]] = []
        self._db: sqlite3.Connection | None = None
        if mode != "off":
            self._db = _open(self.path)

    @property
    def reads(self) -> bool:
        return self.mode in ("on", "read")

    @property
    def writes(self) -> bool:
        return self.mode in ("on", "refresh")

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached values of those keys that are cached (one query per 500 keys)."""
        if self._db is None or not self.reads:
            return {}
        wanted = list(keys)
        loads = _orjson().loads
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, value FROM generations WHERE key IN ({marks})",
                chunk,
            )
            for key, value in rows:
                found[key] = loads(value)
        return found

    def put(self, key: str, value: Mapping[str, Any], components: Mapping[str, Any]) -> None:
        """Queue one entry; it is written at the next :meth:`flush`."""
        if self._db is None or not self.writes:
            return
        self._pending.append(
            (
                key,
                str(components.get("model", "")),
                time.time(),
                canonical_json(components),
                canonical_json(value),
            )
        )

    def flush(self) -> None:
        """Write the queued entries in one transaction."""
        if self._db is None or not self._pending:
            return
        pending, self._pending = self._pending, []
        with _transaction(self._db):
            self._db.executemany(
                "INSERT OR REPLACE INTO generations (key, model, created, components, value) "
                "VALUES (?, ?, ?, ?, ?)",
                pending,
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._db is not None:
                self._db.close()
                self._db = None

    def stats(self) -> dict[str, Any]:
        """Entries (in all and per model), the file's size, the oldest and newest entry."""
        assert self._db is not None
        self.flush()
        total, oldest, newest = self._db.execute(
            "SELECT COUNT(*), MIN(created), MAX(created) FROM generations"
        ).fetchone()
        models = dict(
            self._db.execute(
                "SELECT model, COUNT(*) FROM generations GROUP BY model ORDER BY 2 DESC"
            ).fetchall()
        )
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return {
            "path": str(self.path),
            "entries": int(total),
            "bytes": size,
            "models": models,
            "oldest": oldest,
            "newest": newest,
        }

    def clear(self, *, model: str | None = None) -> int:
        """Delete every entry (or one model's); the number deleted."""
        assert self._db is not None
        self.flush()
        with _transaction(self._db):
            if model is None:
                cursor = self._db.execute("DELETE FROM generations")
            else:
                cursor = self._db.execute("DELETE FROM generations WHERE model = ?", (model,))
        self._db.execute("VACUUM")
        return int(cursor.rowcount)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    # The connection is in autocommit mode (isolation_level=None): without an explicit
    # transaction, executemany would commit each row on its own.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _open(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 60000")
        db.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a commit survives a crash of this process, not of the machine;
        # losing the last entries costs requests, never wrong answers.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(_SCHEMA)
    except (OSError, sqlite3.Error) as error:
        raise ConfigurationError(
            f"config key 'cache.path': cannot open the cache {str(path)!r}: {error}"
        ) from None
    return db
