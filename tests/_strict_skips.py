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
    if strict() and report.skipped and not hasattr(report, "wasxfail") and not _shown(item):
        _fail(report)


def _shown(item: pytest.Item) -> bool:
    """A docstring example marked ``# doctest: +SKIP`` throughout: shown, never meant to run
    (it needs a server or a cloud), so its skip hides nothing CI could run."""
    return isinstance(item, pytest.DoctestItem) and all(
        example.options.get(_SKIP_FLAG, False) for example in item.dtest.examples
    )


_SKIP_FLAG = __import__("doctest").SKIP


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if strict() and report.skipped:
        _fail(report)
