"""`make bench`: run every bench/bench_*.py and write their markdown into docs/benchmarks.md."""

from __future__ import annotations

import ast
import datetime
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["reward-kit", "fastapi", "uvicorn", "pydantic", "pebble", "orjson", "httpx"]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    wrk = ""
    if shutil.which("wrk"):
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    if wrk:
        versions.append(wrk.split()[0] + " " + wrk.split()[1])
    return (
        f"- Machine: {len(os.sched_getaffinity(0))} cores ({cpu}), Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}\n"
        f"- Versions: {', '.join(versions)}\n"
        f"- Run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with "
        "`make bench` (`python bench/run.py`); every figure is a median of "
        f"{os.environ.get('RK_BENCH_RUNS', '5')} runs, stated against a baseline measured in "
        "the same run. Absolute numbers on a shared 2-core VM vary by +-15%; read the ratios."
    )


def _title(script: Path) -> str:
    """The first sentence of the script's docstring names its section."""
    doc = ast.get_docstring(ast.parse(script.read_text())) or script.stem
    return doc.split("\n\n")[0].replace("\n", " ").split(". ")[0].rstrip(".")


def main() -> None:
    only = sys.argv[1:]
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    sections = []
    for script in scripts:
        if only and script.stem not in only:
            continue
        print(f"running {script.name} ...", file=sys.stderr)
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, check=False
        )
        if result.returncode != 0:
            sections.append(f"## {script.stem}\n\nFAILED:\n\n```\n{result.stderr[-3000:]}\n```")
        else:
            text = result.stdout.strip()
            if not text.startswith("#"):
                text = f"## {_title(script)}\n\n{text}"
            sections.append(text)
    text = "# Benchmarks\n\n" + machine() + "\n\n" + "\n\n".join(sections) + "\n"
    (ROOT / "docs" / "benchmarks.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
