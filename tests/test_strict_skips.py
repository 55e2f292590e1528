"""In CI (RK_REQUIRE_INTEGRATION=1) nothing may skip: not even an importorskip or a
module-level skip that bypasses ``require_integration``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

SKIPPING = {
    "test_collection_skip.py": 'import pytest\npytest.importorskip("no_such_module_rk")\n',
    "test_runtime_skip.py": (
        "import pytest\n\n\ndef test_skips():\n    pytest.skip('no tool here')\n\n\n"
        "def test_passes():\n    assert True\n"
    ),
}


def run(folder: Path, target: Path, strict: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RK_REQUIRE_INTEGRATION"}
    if strict:
        env["RK_REQUIRE_INTEGRATION"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests._strict_skips", "-p", "no:cacheprovider",
         "-c", str(folder / "pytest.ini"), "--rootdir", str(folder), "-rA", str(target)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_skips_fail_in_ci_and_skip_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    for name, text in SKIPPING.items():
        (tmp_path / name).write_text(text)
    relaxed = run(tmp_path, tmp_path, strict=False)
    assert relaxed.returncode == 0, relaxed.stdout
    assert "1 passed, 2 skipped" in relaxed.stdout
    at_runtime = run(tmp_path, tmp_path / "test_runtime_skip.py", strict=True)
    assert at_runtime.returncode == 1, at_runtime.stdout
    assert "1 failed, 1 passed" in at_runtime.stdout
    assert "RK_REQUIRE_INTEGRATION=1 but this was skipped: no tool here" in at_runtime.stdout
    # A skip while collecting (a module-level importorskip) stops the run as an error.
    collecting = run(tmp_path, tmp_path / "test_collection_skip.py", strict=True)
    assert collecting.returncode == 2, collecting.stdout
    assert "RK_REQUIRE_INTEGRATION=1 but this was skipped" in collecting.stdout
    assert "no_such_module_rk" in collecting.stdout
