"""Run code against tests in the sandbox, one verdict per test, each decided by a process that
never ran model code (see _harness.py)."""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from ._config import RunResult, SandboxUnavailable
from ._sandbox import Sandbox

__all__ = ["PreludeFailed", "TestVerdict", "TestsRun", "run_python_tests"]

_HERE = Path(__file__).parent
_HARNESS = (_HERE / "_harness.py").read_text()
# The harness's siblings inside the sandbox (they import each other by these names).
_FILES = {
    "rk_wire.py": (_HERE / "_wire.py").read_text(),
    "rk_verdict.py": (_HERE / "_verdict.py").read_text(),
    "rk_server.py": (_HERE / "_solution.py").read_text(),
}
# The interpreter's start-up and the harness's own set-up, on a loaded host.
_START_SECONDS = 5.0


@dataclass(frozen=True)
class TestVerdict:
    """One test's outcome: ``passed`` only when the harness saw the test's code return."""

    passed: bool
    reason: str


@dataclass
class TestsRun:
    """All tests' verdicts, in order, and the sandbox run that produced them."""

    verdicts: list[TestVerdict]
    run: RunResult


class PreludeFailed(ValueError):
    """The trusted code run before each test (``prelude``) failed: the tests' fault."""


def run_python_tests(
    sandbox: Sandbox,
    code: str,
    tests: list[str],
    *,
    prelude: str = "",
    entry_points: list[str] | None = None,
    max_total_seconds: float | None = None,
) -> TestsRun:
    """Load ``code`` once in a process of its own, then run each of ``tests`` in a fresh
    verdict process, where the names of ``code`` the test uses are calls into a fresh copy of
    the loaded code, answered with plain data only (see ``_verdict.py``).

    A test passes only if its code returned (an ``assert`` that held, ``check(f)`` that
    returned) and every call it made was answered with plain data; the solution's process
    ending, raising ``SystemExit`` or answering anything else fails it. Code that fails to
    load fails every test.

    ``prelude``: trusted code run in the verdict process before each test (HumanEval's prompt:
    its imports and helpers); ``entry_points``: the only names of ``code`` the tests see (None:
    every name a test uses, except Python's builtins). A prelude that raises is
    :class:`PreludeFailed`, never a score.

    Time: ``sandbox.limits.wall_seconds`` is the budget of each step (loading the code once,
    then each test), kept by the harness; the run's wall-clock limit is the sum of the steps
    plus start-up, at most ``max_total_seconds``. A test past its own budget fails alone.

    Raises :class:`SandboxUnavailable` when the harness fails before any model code ran (it
    never printed its ``start`` line, or it reported that it could not start a process):
    that is the sandbox failing, never a score.
    """
    if not tests:
        raise ValueError("run_python_tests needs at least one test")
    step = sandbox.limits.wall_seconds
    total = step * (len(tests) + 1) + _START_SECONDS
    if max_total_seconds is not None:
        total = max(min(total, max_total_seconds), step + _START_SECONDS)
    box = copy.copy(sandbox)
    box.limits = dataclasses.replace(sandbox.limits, wall_seconds=total)
    nonce = secrets.token_hex(16)
    # Ending leftover processes between tests needs the sandbox's own PID namespace.
    spec = {
        "tests": tests,
        "prelude": prelude,
        "entry_points": entry_points,
        "sweep": sandbox.isolation == "bubblewrap",
        "seconds": step,
    }
    files = {"rk_solution.py": code, "rk_tests.json": json.dumps(spec), "rk_nonce": nonce}
    run = box.run_python(_HARNESS, files={**_FILES, **files})
    found: dict[str, str] = {}
    for line in run.stdout.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == nonce:
            key, _, said = rest.partition(" ")
            found.setdefault(key, said)
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    ended = f"{run.status} ({run.reason})"
    if lines and run.status != "ok":
        ended += f": {lines[-1][:200]}"
    if "start" not in found:
        # No model code has run: whatever stopped the harness is the sandbox's failure.
        raise SandboxUnavailable(f"the test harness failed before running any code: {ended}")
    if "error" in found:
        raise SandboxUnavailable(f"the test harness failed: {found['error']}")
    if "setup" in found:
        why = f"the code failed before the tests: {found['setup']}"
        return TestsRun([TestVerdict(False, why)] * len(tests), run)
    verdicts = []
    for index in range(len(tests)):
        verdict = found.get(str(index))
        if verdict is None:
            verdicts.append(TestVerdict(False, f"no verdict: the run ended with {ended}"))
        elif verdict == "pass":
            verdicts.append(TestVerdict(True, "passed"))
        elif verdict.startswith("invalid "):
            raise PreludeFailed(verdict.removeprefix("invalid "))
        else:
            verdicts.append(TestVerdict(False, verdict))
    return TestsRun(verdicts, run)
