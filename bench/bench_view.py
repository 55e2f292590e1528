"""rk view: opening a 100,000-sample run. Prints a markdown section.

    .venv/bin/python bench/bench_view.py [--prompts 25000] [--samples 4]

"Open" is what `rk view RUN` does before the first page is usable: read results.jsonl,
summary.json and manifest.json and index the columns (load), compute the run page (overview),
and answer the samples table's first page; then the queries the table sends (a status filter,
a text search, a sort by score) and the comparison of two such runs. With Chromium installed
(/usr/bin/chromium), also the time from navigation until the browser has rendered each page,
against a real loopback server. The run is generated in the output format (tests/view).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _common import ROOT, table

sys.path.insert(0, str(ROOT))
from reward_kit.view import compare, create_app, load_run, overview, query_samples
from tests.view._synthetic import write_run


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def _browser_rows(runs: list[Any]) -> list[list[str]]:
    from tests.conftest import LiveServer
    from tests.view._browser import CHROMIUM, chromium
    from tests.view.test_browser import open_page

    if not Path(CHROMIUM).exists():
        return [["browser", "skipped: no /usr/bin/chromium"]]
    rows = []
    with LiveServer(create_app(runs)) as server, chromium() as driver:
        open_page(driver, server.url + "/#/")  # browser start-up is not the page's cost
        for label, route in (("run page", "#/run/0"), ("samples page", "#/run/0/samples"),
                             ("failed samples", "#/run/0/samples?status=failed"),
                             ("comparison", "#/compare/0/1")):  # fmt: skip
            driver.get("about:blank")
            seconds, _ = _timed(lambda route=route: open_page(driver, server.url + "/" + route))
            rows.append([f"browser: {label} rendered", f"{seconds * 1000:.0f} ms"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=25_000)
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rk-bench-view-"))
    try:
        write_run(folder / "a", prompts=args.prompts, samples=args.samples)
        write_run(folder / "b", prompts=args.prompts, samples=args.samples, skill=0.7, seed=1)
        size = (folder / "a" / "results.jsonl").stat().st_size / 1e6
        load_s, run = _timed(lambda: load_run(folder / "a"))
        gc.freeze()  # as `rk view` does once its runs are loaded
        overview_s, _ = _timed(lambda: overview(run))
        page_s, _ = _timed(lambda: query_samples(run, {}))
        rows: list[list[str]] = [
            ["results.jsonl", f"{len(run.rows):,} samples, {size:.0f} MB"],
            ["load (read + index)", f"{load_s * 1000:.0f} ms"],
            ["run page data (overview)", f"{overview_s * 1000:.0f} ms"],
            ["first table page", f"{page_s * 1000:.1f} ms"],
            ["**open, total**", f"**{(load_s + overview_s + page_s) * 1000:.0f} ms**"],
        ]
        for label, params in (("filter status=failed", {"status": "failed"}),
                              ("text search (first, builds the index)", {"q": "don't know"}),
                              ("text search (again)", {"q": "answer is"}),
                              ("sort by score", {"sort": "score", "desc": "1"})):  # fmt: skip
            seconds, result = _timed(lambda params=params: query_samples(run, params))
            rows.append([label, f"{seconds * 1000:.0f} ms ({result['total']:,} match)"])
        other = load_run(folder / "b")
        gc.freeze()
        seconds, _ = _timed(lambda: compare(run, other))
        rows.append(["compare two runs (paired bootstrap, 2,000 resamples)", f"{seconds:.2f} s"])
        print(f"## rk view: opening a {len(run.rows):,}-sample run\n")
        print(
            f"A generated run of {args.prompts:,} prompts x {args.samples} samples in rk run's "
            "output format, opened as `rk view` does it (read, index, run page, first table "
            "page), then the table's queries, the comparison of two such runs (numpy draws the "
            "bootstrap when installed), and pages rendered by headless Chromium from a loopback "
            "server.\n"
        )
        print(table(["step", "time"], rows + _browser_rows([run, other])))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
