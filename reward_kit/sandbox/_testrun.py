"""Run code against in-process tests in the sandbox, one verdict per test (see _harness.py for
why the verdicts cannot be printed by the code under test)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from ._config import RunResult
from ._sandbox import Sandbox

__all__ = ["TestVerdict", "TestsRun", "run_python_tests"]

_HARNESS = (Path(__file__).parent / "_harness.py").read_text()


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


def run_python_tests(sandbox: Sandbox, code: str, tests: list[str]) -> TestsRun:
    """Run ``code``, then each of ``tests`` in its namespace, each test in a fresh process.

    A test passes only if its code returned (an ``assert`` that held, ``check(f)`` that
    returned); leaving early (``sys.exit``, ``os._exit``, a signal) is a failure. Code that
    fails to load fails every test.
    """
    if not tests:
        raise ValueError("run_python_tests needs at least one test")
    nonce = secrets.token_hex(16)
    # Ending leftover processes between tests needs the sandbox's own PID namespace.
    spec = {"tests": tests, "sweep": sandbox.isolation == "bubblewrap"}
    run = sandbox.run_python(
        _HARNESS,
        files={"rk_solution.py": code, "rk_tests.json": json.dumps(spec), "rk_nonce": nonce},
    )
    found: dict[str, str] = {}
    for line in run.stdout.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == nonce:
            key, _, said = rest.partition(" ")
            found.setdefault(key, said)
    if "setup" in found:
        why = f"the code failed before the tests: {found['setup']}"
        return TestsRun([TestVerdict(False, why)] * len(tests), run)
    ended = f"{run.status} ({run.reason})"
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    if lines and run.status != "ok":
        ended += f": {lines[-1][:100]}"
    verdicts = []
    for index in range(len(tests)):
        verdict = found.get(str(index))
        if verdict is None:
            verdicts.append(TestVerdict(False, f"no verdict: the run ended with {ended}"))
        elif verdict == "pass":
            verdicts.append(TestVerdict(True, "passed"))
        else:
            verdicts.append(TestVerdict(False, verdict))
    return TestsRun(verdicts, run)
