"""Fuzz the /envs routes from the OpenAPI schema: no 5xx for any generated request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import rk_serve

from .conftest import GAMES

pytestmark = pytest.mark.slow

KEY = "fuzz-key-0123456789abcdef"


def test_generated_requests_never_get_a_server_error() -> None:
    env = {"RK_API_KEYS": f"fuzz {KEY}", "RK_WORKERS": "0"}
    with rk_serve(GAMES, "--log-level", "warning", env=env) as url:
        command = [
            str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/openapi.json",
            "--checks", "not_a_server_error", "-H", f"Authorization: Bearer {KEY}",
            "--max-examples", "60", "--seed", "20261205", "--generation-database", "none",
            "--workers", "1", "--include-path-regex", "^/envs",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
