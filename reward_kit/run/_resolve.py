"""A run's config from its sources, in order: a TOML or YAML file, flags, then ``--set
key.path=value`` overrides (dotted paths, list indices as numbers, like Hydra's).

A value from ``--set`` is given to the model as the string it is, so pydantic coerces it to the
key's type (``0.7``, ``true``, ``8``); when the key wants a list or a table it is read as JSON
(``--set 'model.stop=["\\n"]'``). Every error names the key and where the value came from.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .._errors import ConfigurationError
from .._extras import require
from ._config import RunConfig

__all__ = ["load_file", "parse_set", "resolve_config"]


def load_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file; a
    manifest.json's ``config`` for ``rk run --from``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigurationError(f"cannot read config {str(path)!r}: {error.strerror}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - 3.10
                tomllib = require("tomli", extra="run", feature="TOML configs")
            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            yaml = require("yaml", extra="run", feature="YAML configs")
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
            if isinstance(data, dict) and "config" in data and "reward_kit" in data:
                data = data["config"]  # a run's manifest.json
        else:
            raise ConfigurationError(
                f"config {str(path)!r}: unknown format {suffix or '(no suffix)'!r}; "
                "use .toml, .yaml/.yml, or a run's manifest.json"
            )
    except ConfigurationError:
        raise
    except Exception as error:  # tomllib/yaml/json syntax errors carry the line in the message
        raise ConfigurationError(f"config {str(path)!r} is not valid: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"config {str(path)!r}: expected a table of keys at the top")
    return data


def parse_set(expression: str) -> tuple[list[str], str]:
    """``a.b.c=value`` -> (["a", "b", "c"], "value")."""
    key, sep, value = expression.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigurationError(
            f"--set {expression!r}: expected KEY.PATH=VALUE, e.g. --set model.temperature=0.7"
        )
    return parts, value


def resolve_config(
    base: Mapping[str, Any] | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> RunConfig:
    """Validate ``base`` (a config file's mapping) with ``flags`` (dotted key -> typed value)
    and ``sets`` (``key.path=value`` strings) applied on top, in that order."""
    data: dict[str, Any] = json.loads(json.dumps(dict(base or {})))  # a deep, plain copy
    origin: dict[tuple[str, ...], str] = {}
    for dotted, value in (flags or {}).items():
        path = dotted.split(".")
        _assign(data, path, value, dotted)
        origin[tuple(path)] = f"flag for {dotted}"
    raw_sets: list[tuple[list[str], str]] = [parse_set(s) for s in sets]
    if raw_sets:
        # Sets apply to the validated config, where every table and list entry is spelt out
        # (a reward given as "file.py" is {"target": "file.py", ...}).
        try:
            data = RunConfig.model_validate(data).model_dump(mode="json")
        except ValidationError as error:
            raise ConfigurationError(describe(error, origin)) from None
    for path, value in raw_sets:
        _assign(data, path, _list_or_table(value), ".".join(path))
        origin[tuple(path)] = f"--set {'.'.join(path)}={value}"
        with contextlib.suppress(ValidationError):  # spelt out again for the next --set
            data = RunConfig.model_validate(data).model_dump(mode="json")
    tried: set[int] = set()
    while True:
        try:
            return RunConfig.model_validate(data)
        except ValidationError as error:
            # A --set value that is not right as a string may be JSON (a number where a union
            # allows a string, null); each is tried once.
            retried = False
            for number, (path, value) in enumerate(raw_sets):
                if number not in tried and _failed_at(error, path):
                    tried.add(number)
                    retried = _set_json(data, path, value) or retried
            if not retried:
                raise ConfigurationError(describe(error, origin)) from None


def _list_or_table(value: str) -> Any:
    """A --set value that looks like a JSON list or table is one, ``null`` is None (unset);
    anything else stays a string for the model to coerce."""
    if value.strip() == "null":
        return None
    if value.lstrip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _failed_at(error: ValidationError, path: list[str]) -> bool:
    target = tuple(path)
    for detail in error.errors():
        loc = tuple(str(p) for p in detail["loc"])
        if loc[: len(target)] == target or target[: len(loc)] == loc:
            return True
    return False


def _set_json(data: dict[str, Any], path: list[str], value: str) -> bool:
    try:
        parsed = json.loads(value)
    except ValueError:
        return False
    if parsed == value or isinstance(parsed, str):
        return False
    return _assign(data, path, parsed, ".".join(path), replace_only=True)


def _assign(
    data: dict[str, Any], path: list[str], value: Any, dotted: str, *, replace_only: bool = False
) -> bool:
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        key: Any = part
        if isinstance(node, list):
            key = _index(node, part, ".".join(path[: depth + 1]))
        elif not isinstance(node, dict):
            raise ConfigurationError(
                f"config key {'.'.join(path[:depth])!r} is not a table, so {dotted!r} cannot be set"
            )
        elif part not in node or node[part] is None:
            node[part] = {}
        node = node[key]
    last: Any = path[-1]
    if isinstance(node, list):
        last = _index(node, last, dotted)
    elif not isinstance(node, dict):
        raise ConfigurationError(
            f"config key {'.'.join(path[:-1])!r} is not a table, so {dotted!r} cannot be set"
        )
    if replace_only and isinstance(node, dict) and last not in node:
        return False
    node[last] = value
    return True


def _index(node: list[Any], part: str, dotted: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigurationError(
            f"config key {dotted!r}: index {part!r} is not one of the list's "
            f"{len(node)} entries (0-{max(len(node) - 1, 0)})"
        )
    return int(part)


def describe(error: ValidationError, origin: Mapping[tuple[str, ...], str] | None = None) -> str:
    """One line per problem, each naming the config key (and the flag or --set it came from)."""
    lines = []
    for detail in error.errors():
        loc = tuple(str(p) for p in detail["loc"])
        key = ".".join(loc) or "(config)"
        if detail["type"] == "extra_forbidden":
            known = ", ".join(_known_keys(loc[:-1]))
            message = f"unknown key (known here: {known})"
        else:
            message = str(detail["msg"])
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
        source = next((s for p, s in (origin or {}).items() if loc[: len(p)] == p), None)
        lines.append(f"config key {key!r}: {message}" + (f" (from {source})" if source else ""))
    return "invalid run config:\n  " + "\n  ".join(lines)


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] | None = RunConfig
    for part in loc:
        if model is None or part.isdigit():
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field is not None else None
    return sorted(model.model_fields) if model is not None else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
