"""``rk view``: look at ``rk run`` runs and ``rk eval`` results in a browser, served on
loopback or exported as one self-contained HTML file. See docs/view.md."""

from __future__ import annotations

from ._app import create_app
from ._compare import compare
from ._export import export_html, render_export
from ._load import Run, load_run
from ._overview import overview
from ._query import query_samples
from ._serve import serve

__all__ = [
    "Run",
    "compare",
    "create_app",
    "export_html",
    "load_run",
    "overview",
    "query_samples",
    "render_export",
    "serve",
]
