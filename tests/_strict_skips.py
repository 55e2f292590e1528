"""Under RK_REQUIRE_INTEGRATION=1 (CI), a skip is a failure, whatever raised it.

``require_integration`` fails with a precise message for missing system tools; this plugin
covers everything else that can skip (``pytest.importorskip``, module-level skips), so CI never
goes green while silently not running a test it could run.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


def strict() -> bool:
    return os.environ.get("RK_REQUIRE_INTEGRATION") == "1"


def _fail(report: Any) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    reason = str(reason).removeprefix("Skipped: ")
    report.longrepr = f"RK_REQUIRE_INTEGRATION=1 but this was skipped: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if strict() and report.skipped and not hasattr(report, "wasxfail"):
        _fail(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if strict() and report.skipped:
        _fail(report)
