"""Build the sdist and wheel, check them, and smoke-test the wheel installed in a fresh venv.

`make package-check` runs this: a green CI then proves the package a user would install works,
not only the editable checkout. Usage: python tools/package_check.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent

# Files the installed package reads at run time, and the licences it must carry.
WHEEL_REQUIRED = [
    "reward_kit/py.typed",
    "reward_kit/deploy/artifacts/templates/Dockerfile.in",
    "reward_kit/deploy/artifacts/templates/compose.yml.in",
    "reward_kit/deploy/artifacts/templates/dockerignore.in",
    "reward_kit/deploy/artifacts/templates/rk_lambda.py.in",
    "reward_kit/deploy/policies/aws-deployer-policy.json",
    "reward_kit/deploy/policies/aws-lambda-boundary.json",
    "reward_kit/deploy/policies/gcp-deployer-iam-role.json",
    "reward_kit/deploy/policies/gcp-deployer-role.json",
    "reward_kit/view/static/index.html",
    "reward_kit/view/static/app.js",
    "reward_kit/view/static/app.css",
    "reward_kit/view/static/markdown.js",
    "reward_kit/view/static/vendor/uPlot.iife.min.js",
    "reward_kit/view/static/vendor/uPlot.min.css",
    "reward_kit/view/static/vendor/uPlot.LICENSE",
    "{dist_info}/licenses/LICENSE",
    "{dist_info}/licenses/NOTICE",
    "{dist_info}/entry_points.txt",
]
# The sdist also builds the docs site (mkdocs.yml and its griffe extension).
SDIST_REQUIRED = [
    "LICENSE",
    "NOTICE",
    "README.md",
    "CHANGELOG.md",
    "pyproject.toml",
    "PKG-INFO",
    "mkdocs.yml",
    "tools/griffe_doctest.py",
    "docs/index.md",
]
# Never shipped in either archive: tests, caches, local state, benchmark results, secrets.
FORBIDDEN = [
    "tests/*",
    "*/tests/*",
    "*__pycache__*",
    "*.pyc",
    "*.venv*",
    "bench/*",
    "*/.results/*",
    "*.pytest_cache*",
    "*.mypy_cache*",
    "*.ruff_cache*",
    "*.rk-secrets*",
    "*secrets/*",
    "runs/*",
    "dist/*",
    "build/*",
    "*.DS_Store",
    "*.egg-info*",
    "*.schemathesis*",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build and install here, and keep it")
    args = parser.parse_args()
    version = _source_version()
    if not re.search(rf"^## \[{re.escape(version)}\]", (ROOT / "CHANGELOG.md").read_text(), re.M):
        _fail(f"CHANGELOG.md has no '## [{version}]' section for the version being built")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        _check(args.keep, version)
    else:
        with tempfile.TemporaryDirectory(prefix="rk-package-check-") as work:
            _check(Path(work), version)
    print(f"package-check: reward-kit {version} OK")


def _check(work: Path, version: str) -> None:
    dist = work / "dist"
    _step("build", [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
    wheel = _one(dist, f"reward_kit-{version}-py3-none-any.whl")
    sdist = _one(dist, f"reward_kit-{version}.tar.gz")
    # twine gets its own venv: the dev one may hold an older `packaging` (another package's
    # pin) that rejects the metadata version hatchling writes, which PyPI accepts.
    twine = work / "twine"
    _step("twine venv", [sys.executable, "-m", "venv", str(twine)])
    _step("twine install", [str(twine / "bin/python"), "-m", "pip", "install", "-q", "twine>=6.1"])
    _step("twine check", [str(twine / "bin/twine"), "check", "--strict", str(wheel), str(sdist)])
    with zipfile.ZipFile(wheel) as archive:
        _inspect("wheel", archive.namelist(), WHEEL_REQUIRED, f"reward_kit-{version}.dist-info")
    with tarfile.open(sdist) as archive:
        prefix = f"reward_kit-{version}/"
        names = [name.removeprefix(prefix) for name in archive.getnames()]
        _inspect("sdist", names, SDIST_REQUIRED, "")
    _smoke(work, wheel, version)


def _inspect(kind: str, names: list[str], required: list[str], dist_info: str) -> None:
    present = set(names)
    missing = [
        path for path in (r.format(dist_info=dist_info) for r in required) if path not in present
    ]
    stray = sorted(n for n in names if any(fnmatch.fnmatch(n, p) for p in FORBIDDEN))
    if kind == "wheel":
        # Everything in a wheel is the package or its metadata.
        stray += sorted(n for n in names if not n.startswith(("reward_kit/", f"{dist_info}/")))
    if missing or stray:
        _fail(f"{kind}: missing {missing or 'nothing'}; should not ship {stray or 'nothing'}")
    print(f"package-check: {kind} contents OK ({len(names)} files)")


def _smoke(work: Path, wheel: Path, version: str) -> None:
    venv = work / "venv"
    _step("venv", [sys.executable, "-m", "venv", str(venv)])
    bin_dir = venv / "bin"
    # The wheel with the server extra, from PyPI like a user's install (the pip cache is reused).
    _step(
        "install wheel[server]",
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", f"{wheel}[server]"],
    )
    # Run from outside the checkout so nothing imports the source tree by accident.
    outside = work / "elsewhere"
    outside.mkdir(exist_ok=True)
    shown = _run([str(bin_dir / "rk"), "--version"], cwd=outside)
    if shown.split()[-1] != version:
        _fail(f"rk --version says {shown!r}, the package is {version}")
    _run([str(bin_dir / "rk-serve"), "--help"], cwd=outside)
    where = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "import reward_kit.sdk, reward_kit; print(reward_kit.__file__)",
        ],
        cwd=outside,
    )
    if not where.startswith(str(venv)):
        _fail(f"imported reward_kit from {where}, not the installed wheel")
    _serve_health(bin_dir, outside, version)
    print("package-check: installed wheel runs rk, rk-serve and reward_kit.sdk")


def _serve_health(bin_dir: Path, cwd: Path, version: str) -> None:
    """Serve the quickstart reward from the installed wheel; /health must give its version."""
    rewards = cwd / "rewards.py"
    rewards.write_text((ROOT / "examples/quickstart/rewards.py").read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(bin_dir / "rk-serve"), str(rewards), "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        health = _poll(f"http://127.0.0.1:{port}/health", server)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    if health is None:
        _fail(f"rk-serve from the wheel never answered /health:\n{stderr.decode()}")
    if health.get("version") != version:
        _fail(f"/health reports version {health.get('version')!r}, the package is {version}")


def _poll(url: str, server: subprocess.Popen[bytes]) -> dict[str, object] | None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: dict[str, object] = json.load(response)
                return body
        except OSError:
            time.sleep(0.2)
    return None


def _source_version() -> str:
    text = (ROOT / "reward_kit/_version.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        _fail("reward_kit/_version.py has no __version__")
    return match.group(1)


def _one(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        _fail(f"expected {name}, the build made {sorted(p.name for p in folder.iterdir())}")
    return path


def _step(name: str, command: list[str]) -> None:
    started = time.monotonic()
    _run(command, cwd=ROOT)
    print(f"package-check: {name} ({time.monotonic() - started:.1f} s)")


def _run(command: list[str], *, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        _fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


def _fail(message: str) -> NoReturn:
    sys.exit(f"package-check: FAILED: {message}")


if __name__ == "__main__":
    main()
