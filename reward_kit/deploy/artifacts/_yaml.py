"""Writing Kubernetes manifests as YAML without a YAML library (the deploy extras have none).

Only what manifests hold: mappings, lists, strings, numbers, booleans. Every string is written
double-quoted as JSON writes it, which YAML reads back as the same string, so no value can turn
into a number, a boolean or a second key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["to_yaml"]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# YAML 1.1 readers (PyYAML) take these as booleans or null even as keys.
_SPECIAL = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def to_yaml(value: Mapping[str, Any], *, header: str = "") -> str:
    """One YAML document; ``header`` lines become comments above it.

    >>> print(to_yaml({"kind": "Service", "spec": {"ports": [{"port": 80}], "x": []}}), end="")
    kind: "Service"
    spec:
      ports:
        - port: 80
      x: []
    """
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comments + "".join(_mapping(value, 0))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    raise TypeError(f"cannot write {type(value).__name__} into a manifest")


def _key(key: str) -> str:
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _SPECIAL
    return key if plain else json.dumps(key)


def _is_block(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and len(value) > 0


def _empty(value: Any) -> str:
    return "{}" if isinstance(value, Mapping) else "[]"


def _mapping(value: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for name, item in value.items():
        key = _key(name)
        if _is_block(item):
            lines.append(f"{pad}{key}:\n")
            lines += _block(item, indent + 2)
        elif isinstance(item, (Mapping, list, tuple)):
            lines.append(f"{pad}{key}: {_empty(item)}\n")
        else:
            lines.append(f"{pad}{key}: {_scalar(item)}\n")
    return lines


def _block(value: Mapping[str, Any] | Sequence[Any], indent: int) -> list[str]:
    if isinstance(value, Mapping):
        return _mapping(value, indent)
    pad = " " * indent
    lines = []
    for item in value:
        if _is_block(item):
            inner = _block(item, indent + 2)
            # The first line of the item goes on the dash's line.
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
        elif isinstance(item, (Mapping, list, tuple)):
            lines.append(f"{pad}- {_empty(item)}\n")
        else:
            lines.append(f"{pad}- {_scalar(item)}\n")
    return lines
