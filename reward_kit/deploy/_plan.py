"""``plan.json``: the API calls a ``--dry-run`` deploy would make, with every secret redacted."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ._spec import PlannedCall

__all__ = ["REDACTED", "redact", "write_plan"]

REDACTED = "<redacted>"
# Request fields that carry key material (or its hash) anywhere in a planned call.
_SECRET_FIELDS = frozenset(
    {"data", "payload", "secretstring", "secretbinary", "zipfile", "api_key", "key"}
)


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-bearing field replaced by ``<redacted>``.

    >>> redact({"secret_id": "s", "payload": {"data": "deploy sha256:00"}})
    {'secret_id': 's', 'payload': '<redacted>'}
    """
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower().replace("_", "") in _SECRET_FIELDS else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, bytes):
        return REDACTED
    return value


def write_plan(out: Path, target: str, calls: Sequence[PlannedCall]) -> Path:
    """Write ``plan.json`` (redacted) into ``out`` and return its path."""
    path = out / "plan.json"
    document = {"target": target, "calls": [redact(asdict(call)) for call in calls]}
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    return path
