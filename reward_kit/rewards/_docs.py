"""Renders the table of built-ins in docs/rewards.md from the functions' docstrings.

``python -m reward_kit.rewards._docs docs/rewards.md`` rewrites the table in place; a test
checks the file is current.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

from .._function import RewardFunction

__all__ = ["BEGIN", "END", "render_table", "update"]

BEGIN = "<!-- BEGIN GENERATED: python -m reward_kit.rewards._docs docs/rewards.md -->"
END = "<!-- END GENERATED -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _parts(doc: str) -> tuple[str, str, str]:
    """(what it checks, ground_truth shape, example) from a built-in's docstring."""
    prose, truth, example = [], "", []
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith(">>>"):
            example.append(stripped[4:])
        elif stripped.startswith("...") and example:
            example[-1] += stripped[4:]
        elif stripped.startswith("ground_truth:"):
            truth = stripped.removeprefix("ground_truth:").strip()
        elif example or truth:
            # Continuation of the ground_truth line (the example comes last).
            truth += " " + stripped if stripped and not example else ""
        else:
            prose.append(stripped)
    statements = [re.sub(r"\s*#\s*doctest:.*$", "", line) for line in example]
    call = re.sub(r"\s+", " ", "; ".join(statements)).replace("( ", "(").replace("[ ", "[")
    return " ".join(p for p in prose if p), truth, call


def _parameters(fn: RewardFunction[Any]) -> str:
    shown = []
    for parameter in inspect.signature(fn.func).parameters.values():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            default = repr(parameter.default)
            default = default if len(default) <= 48 else default[:45] + "..."
            shown.append(f"`{parameter.name}={default}`")
    return ", ".join(shown) or "none"


def render_table() -> str:
    from .. import rewards

    rows = [
        "| Function | What it checks | Options (keyword-only, defaults) | ground_truth | Example |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in sorted(rewards.__all__):
        fn = getattr(rewards, name)
        if not isinstance(fn, RewardFunction):
            continue
        checks, truth, example = _parts(fn.doc)
        example_cell = f"`{_cell(example)}`" if example else ""
        rows.append(
            f"| `{name}` | {_cell(checks)} | {_cell(_parameters(fn))} | {_cell(truth)} "
            f"| {example_cell} |"
        )
    return "\n".join(rows)


def update(path: Path) -> bool:
    """Rewrite the generated block of ``path``; True when it changed."""
    text = path.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:start] + "\n" + render_table() + "\n" + text[end:]
    path.write_text(new)
    return new != text


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(f"{argument}: {'updated' if update(Path(argument)) else 'already current'}")
