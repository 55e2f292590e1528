"""One version everywhere: ``rk --version``, ``/health`` and the package agree, and it is SemVer."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

import reward_kit

from .conftest import rk_serve

ROOT = Path(__file__).resolve().parent.parent
# SemVer 2.0.0's grammar for a release or pre-release (no build metadata: PyPI refuses it).
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?")


def test_version_is_semver() -> None:
    assert SEMVER.fullmatch(reward_kit.__version__), reward_kit.__version__


def test_cli_and_health_report_the_package_version() -> None:
    rk = Path(sys.executable).parent / "rk"
    shown = subprocess.run([str(rk), "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["reward-kit,", "version", reward_kit.__version__]
    rewards = str(ROOT / "examples/quickstart/rewards.py")
    with rk_serve(rewards, "--workers", "1") as url:
        assert httpx.get(f"{url}/health").json()["version"] == reward_kit.__version__
