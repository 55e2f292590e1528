"""`make bench`: run every bench/bench_*.py and write their markdown into docs/benchmarks.md.

`python bench/run.py bench_engine bench_sdk` runs only the named scripts and replaces just their
sections of docs/benchmarks.md, keeping the others; the header then says which sections were
re-run, and when, since their machine state differs from the full run's.
"""

from __future__ import annotations

import ast
import datetime
import os
import platform
import re
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


def _heading_key(line: str) -> str:
    """A section's heading without its run count: "## Engine and server (each ...)" ->
    "## Engine and server"."""
    return line.split(" (")[0].strip()


def splice(document: str, sections: list[str], note: str) -> str:
    """``document`` with each of ``sections`` in place of the section of the same heading
    (appended when there is none), and ``note`` added to the header's list."""
    parts = re.split(r"(?m)^(?=## )", document)
    header, body = parts[0], [part.rstrip("\n") + "\n\n" for part in parts[1:]]
    for section in sections:
        key = _heading_key(section.splitlines()[0])
        for index, old in enumerate(body):
            if _heading_key(old.splitlines()[0]) == key:
                body[index] = section.rstrip("\n") + "\n\n"
                break
        else:
            body.append(section.rstrip("\n") + "\n\n")
    header = header.rstrip("\n") + "\n" + note + "\n\n"
    return (header + "".join(body)).rstrip("\n") + "\n"


def main() -> None:
    only = sys.argv[1:]
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    unknown = sorted(set(only) - {script.stem for script in scripts})
    if unknown:
        sys.exit(
            f"no such benchmark: {', '.join(unknown)}; bench/ has "
            + ", ".join(script.stem for script in scripts)
        )
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
    target = ROOT / "docs" / "benchmarks.md"
    if only and target.exists():
        when = datetime.datetime.now(datetime.timezone.utc)
        note = (
            f"- Re-run {when:%Y-%m-%d %H:%M} UTC with `python bench/run.py {' '.join(only)}`: "
            "the sections of those scripts; the others are from the run above."
        )
        text = splice(target.read_text(), sections, note)
    else:
        text = "# Benchmarks\n\n" + machine() + "\n\n" + "\n\n".join(sections) + "\n"
    target.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
