"""One self-contained HTML file: the page, its script, the chart library and every run's data
inlined, so it opens offline (from a mail attachment, a CI artifact) and needs no server.

The data sits in a ``<script type="application/json">`` element with every ``<`` written as
``\\u003c``, so no string in a result (a response holding ``</script><script>...``) can end
the element; the page reads it with ``JSON.parse`` and renders it as text, as when served.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations
from pathlib import Path
from typing import Any

from .._extras import require
from ._app import STATIC
from ._compare import compare
from ._load import Run
from ._overview import overview
from ._query import sample_row

__all__ = ["export_html", "render_export"]

# The export's own policy: inline script and style only, and nothing fetched from anywhere.
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
_MAX_COMPARED_RUNS = 6  # every ordered pair is precomputed: 30 comparisons at most


def _data(runs: Sequence[Run]) -> dict[str, Any]:
    pairs = permutations(range(len(runs)), 2) if len(runs) <= _MAX_COMPARED_RUNS else ()
    return {
        "runs": [
            {"id": i, "name": r.name, "kind": r.kind, "samples": len(r.rows),
             "prompts": len(r.by_prompt), "rewards": r.rewards}
            for i, r in enumerate(runs)
        ],
        "overviews": [overview(r) for r in runs],
        "rows": [r.rows for r in runs],
        "table": [[sample_row(r, p) for p in range(len(r.rows))] for r in runs],
        "compares": {f"{a}/{b}": compare(runs[a], runs[b]) for a, b in pairs},
    }  # fmt: skip


def _inline_script(source: str) -> str:
    return source.replace("</script", "<\\/script")


def render_export(runs: Sequence[Run], *, title: str = "rk view") -> str:
    """The export's HTML text."""
    orjson = require("orjson", extra="view", feature="rk view --export")
    data = orjson.dumps(_data(runs)).decode().replace("<", "\\u003c")
    vendor = STATIC / "vendor"
    styles = (vendor / "uPlot.min.css").read_text() + (STATIC / "app.css").read_text()
    scripts = "".join(
        f"<script>{_inline_script((folder / name).read_text())}</script>\n"
        for folder, name in ((vendor, "uPlot.iife.min.js"), (STATIC, "markdown.js"),
                             (STATIC, "app.js"))
    )  # fmt: skip
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    licence = (vendor / "uPlot.LICENSE").read_text().replace("--", "- -")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{safe_title}</title>\n<!-- uPlot (charts), vendored:\n{licence}-->\n"
        f'<style>{styles}</style></head>\n<body><div id="app"></div>\n'
        f'<script type="application/json" id="rk-data">{data}</script>\n{scripts}</body></html>\n'
    )


def export_html(runs: Sequence[Run], path: str | Path) -> Path:
    """Write the export of ``runs`` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(render_export(runs), encoding="utf-8")
    return path
