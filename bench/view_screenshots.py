"""The screenshots in docs/view.md and the README: each main page of rk view, taken by
headless Chromium from generated runs (tests/view/_synthetic.py), so they can be re-taken
after any change to the page.

    .venv/bin/python bench/view_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from reward_kit.view import create_app, load_run
from tests.conftest import LiveServer
from tests.view._browser import chromium
from tests.view.test_browser import open_page

ROOT = Path(__file__).resolve().parent.parent

PAGES = (
    ("view-run.png", "#/run/0", 1400, 1250),
    ("view-samples.png", "#/run/0/samples?status=failed", 1400, 520),
    ("view-sample.png", "#/run/0/sample/4", 1400, 1300),
    ("view-env.png", "#/run/0/sample/57", 1400, 1100),
    ("view-prompt.png", "#/run/0/prompt?id=p00003", 1400, 1000),
    ("view-compare.png", "#/compare/0/1", 1400, 1000),
    ("view-compare-prompt.png", "#/compare/0/1/prompt?id=p00006", 1400, 1000),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rk-view-shots-"))
    try:
        from tests.view._synthetic import write_run

        runs = [
            load_run(
                write_run(folder / "baseline", prompts=60, samples=8, model="model-a", env_prompt=7)
            ),
            load_run(write_run(folder / "candidate", prompts=60, samples=8, skill=0.8, seed=3,
                               model="model-b")),
        ]  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        with LiveServer(create_app(runs)) as server:
            for name, route, width, height in PAGES:
                with chromium(width=width, height=height) as driver:
                    open_page(driver, f"{server.url}/{route}")
                    driver.save_screenshot(str(args.out / name))
                print(args.out / name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
