"""A griffe extension for the API reference (mkdocs.yml): doctest examples become code blocks.

The package's docstrings hold bare ``>>>`` examples (pytest runs them with --doctest-modules).
Markdown would read them as quotes, and ``x["key"]`` in them as links, so each run of example
lines, up to the next blank line, is fenced as ``pycon``.
"""

from __future__ import annotations

from typing import Any

import griffe


class DoctestFences(griffe.Extension):
    """Fence every bare doctest example in the docstrings griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)

    # A package's own module is not passed to on_object; fencing twice changes nothing.
    def on_module(self, *, mod: griffe.Module, **kwargs: Any) -> None:
        self.on_object(obj=mod)


def fence_doctests(text: str) -> str:
    """``text`` with each run of ``>>>`` lines and their output inside a ``pycon`` fence."""
    out: list[str] = []
    in_fence = False
    in_example = False
    indent = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if in_example and not stripped:
            out.append(f"{indent}```")
            in_example = False
        elif not in_example and not in_fence and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            in_example = True
        elif not in_example and stripped.startswith("```"):
            in_fence = not in_fence
        out.append(line)
    if in_example:
        out.append(f"{indent}```")
    return "\n".join(out)
