"""The config reference of docs/run.md, rendered from the :class:`RunConfig` models.

The table sits between ``<!-- BEGIN GENERATED rk run config -->`` and
``<!-- END GENERATED -->``. After changing a config model, rewrite it with::

    python -m reward_kit.run._docs docs/run.md

and a test checks the file is current.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ._config import RunConfig

__all__ = ["COMMAND", "config_table", "render"]

COMMAND = "python -m reward_kit.run._docs docs/run.md"
_BLOCK = re.compile(
    r"(?P<start><!-- BEGIN GENERATED rk run config[^>]*-->\n).*?(?P<end><!-- END GENERATED -->)",
    re.DOTALL,
)


def _rows(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, str, str]]:
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _nested(field.annotation)
        if nested is not None and not _is_list(field.annotation):
            yield from _rows(nested, f"{key}.")
            continue
        if nested is not None:  # a list of tables, e.g. [[rewards]]
            yield key, f"list of tables ({key}.N.*)", "`[]`", field.description or ""
            yield from _rows(nested, f"{key}.N.")
            continue
        default = field.default
        if default is PydanticUndefined and field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        yield key, _type(field.annotation), f"`{json.dumps(default)}`", field.description or ""


def _nested(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type(a) for a in args)
    if origin is list:
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def config_table() -> str:
    """The markdown table of every config key: key, type, default, meaning."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, kind, default, description in _rows(RunConfig, ""):
        cells = (f"`{key}`", kind, default.replace("|", "\\|"), description.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """``text`` with the marked table replaced by the generated one."""
    return _BLOCK.sub(lambda m: m["start"] + "\n" + config_table() + "\n" + m["end"], text)


def main(paths: Sequence[str]) -> int:
    for name in paths:
        path = Path(name)
        text = path.read_text()
        if not _BLOCK.search(text):
            print(f"{path}: no config table marker (see {__name__})", file=sys.stderr)
            return 1
        rendered = render(text)
        if rendered != text:
            path.write_text(rendered)
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
