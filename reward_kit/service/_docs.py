"""The settings tables of docs/http-api.md and docs/auth.md, rendered from ``ServeSettings``.

A table sits between ``<!-- BEGIN GENERATED rk-serve settings (SECTION) ... -->`` and
``<!-- END GENERATED -->``. After changing a setting, rewrite them with::

    python -m reward_kit.service._docs docs/http-api.md docs/auth.md

and a test checks the files are current.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from ._setting import Section, Setting
from ._settings import ServeSettings

__all__ = ["COMMAND", "render_tables", "settings_table"]

COMMAND = "python -m reward_kit.service._docs docs/http-api.md docs/auth.md"
_BLOCK = re.compile(
    r"(?P<start><!-- BEGIN GENERATED rk-serve settings \((?P<section>\w+)\)[^>]*-->\n)"
    r".*?"
    r"(?P<end><!-- END GENERATED -->)",
    re.DOTALL,
)


def settings_table(section: str) -> str:
    """The markdown table of one section's settings: flag, variable, default, meaning."""
    if section not in get_args(Section):
        raise ValueError(f"unknown settings section {section!r} (known: {get_args(Section)})")
    rows = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
    for spec in ServeSettings.describe():
        if spec.section == section:
            cells = (_flag(spec), f"`{spec.env}`", _escape(spec.shown), _escape(spec.description))
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def render_tables(text: str) -> str:
    """``text`` with every marked table replaced by the generated one."""

    def table(match: re.Match[str]) -> str:
        # Blank lines around the table: a table must not run into an HTML comment.
        return match["start"] + "\n" + settings_table(match["section"]) + "\n" + match["end"]

    return _BLOCK.sub(table, text)


def _flag(spec: Setting) -> str:
    if spec.kind == "arguments":
        return f"`{spec.metavar}...` (arguments)"
    if spec.flag is None:
        return ""
    if spec.kind == "switch":
        return f"`{spec.flag}`, `--no-{spec.flag[2:]}`"
    return f"`{spec.flag}`"


def _escape(text: str) -> str:
    # Table cells: '|' would end the cell, '*' (patterns such as *.example.org) start emphasis.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def main(paths: Sequence[str]) -> int:
    """Rewrite the tables in ``paths``; print the files that changed."""
    for name in paths:
        path = Path(name)
        text = path.read_text()
        if not _BLOCK.search(text):
            print(f"{path}: no settings table marker (see {__name__})", file=sys.stderr)
            return 1
        rendered = render_tables(text)
        if rendered != text:
            path.write_text(rendered)
            print(f"rewrote the settings tables of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
