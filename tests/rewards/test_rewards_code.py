"""Code rewards, run for real in the bubblewrap sandbox; HumanEval as acceptance."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest

from reward_kit import InvalidRequest
from reward_kit.engine import Call, Engine, Item
from reward_kit.rewards import code_execution_reward, humaneval_problems, humaneval_reward
from reward_kit.rewards.code import extract_code
from reward_kit.sandbox import Limits, Sandbox
from reward_kit.sandbox._testrun import PreludeFailed, run_python_tests

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("needs_bwrap")]

ADD = "```python\nimport sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n```"
CASES = {"test_cases": [{"input": "1 2", "output": "3"}, {"input": "2 2\n", "output": "4\n"}]}


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


def test_extract_code_prefers_the_last_python_block() -> None:
    text = "```bash\nls\n```\n```python\nx = 1\n```\n```python\nx = 2\n```"
    assert extract_code(text) == "x = 2\n"
    assert extract_code("print(1)") == "print(1)"


def test_stdin_stdout_cases() -> None:
    assert code_execution_reward(say(ADD), ground_truth=CASES).score == 1.0
    wrong = say(ADD.replace("a + b", "a * b"))
    result = code_execution_reward(wrong, ground_truth=CASES)
    assert result.score == 0.5  # 1 * 2 is wrong, 2 * 2 happens to be right
    assert result.metrics["test_0"].reason == "expected '3', got '2'"
    assert code_execution_reward(wrong, ground_truth=CASES, scoring="all").score == 0.0


def test_assert_tests_fraction_and_reasons() -> None:
    code = "```python\ndef add(a, b):\n    return a + b if a < 100 else 0\n```"
    tests = ["assert add(1, 2) == 3", "assert add(100, 1) == 101", "assert add(-1, 1) == 0"]
    result = code_execution_reward(say(code), ground_truth={"tests": tests})
    assert result.score == pytest.approx(2 / 3)
    assert result.metrics["test_1"].reason.startswith("fail AssertionError")


def test_code_that_fails_to_load_fails_every_test() -> None:
    result = code_execution_reward(say("def broken(:\n"), ground_truth={"tests": ["assert True"]})
    assert result.score == 0.0
    assert "SyntaxError" in result.metrics["test_0"].reason


def test_printed_fake_verdicts_do_not_count() -> None:
    cheat = "print('0 pass')\nprint('deadbeef 0 pass')\nraise SystemExit(0)"
    result = code_execution_reward(say(cheat), ground_truth={"tests": ["assert False"]})
    assert result.score == 0.0


def test_a_hanging_test_fails_alone() -> None:
    """Each test has its own time budget: the tests after a hanging one still run."""
    code = "def f():\n    while True:\n        pass"
    tests = ["assert 1 == 1", "f()", "assert 2 == 2"]
    result = code_execution_reward(say(code), ground_truth={"tests": tests}, timeout_per_run=2)
    assert [m.score for m in result.metrics.values()] == [1.0, 0.0, 1.0]
    reason = result.metrics["test_1"].reason
    # Whichever comes first: the test's wall clock, or the CPU limit killing the solution's
    # process, seen by the test as that process ending while it waited for an answer (the
    # two budgets are both 2 s, so a loaded machine can show either).
    signs = ("timeout", "CPU time limit", "ended during a call")
    assert any(sign in reason for sign in signs), reason


SOLUTION_OBJECTS = """
import math
LIMIT = 10
class Solution:
    def twoSum(self, nums, target):
        seen = {}
        for i, n in enumerate(nums):
            if target - n in seen:
                return [seen[target - n], i]
            seen[n] = i
class Stack:
    def __init__(self):
        self.items = []
    def push(self, x):
        self.items.append(x)
    def pop(self):
        return self.items.pop()
    @property
    def size(self):
        return len(self.items)
    def __eq__(self, other):
        return True
def root(x):
    if x < 0:
        raise ValueError("negative")
    return math.sqrt(x)
def merge(a, b):
    return a.items + b.items
def raw(a, b):
    return Stack()
"""
OBJECT_TESTS = {
    "assert Solution().twoSum([2, 7, 11, 15], 9) == [0, 1]": 1.0,
    "s = Stack()\ns.push(1)\ns.push(2)\nassert s.pop() == 2\nassert s.size == 1": 1.0,
    "assert LIMIT == 10 and Stack().items == []": 1.0,
    "try:\n    root(-1)\nexcept ValueError as e:\n    assert 'negative' in str(e)\n"
    "else:\n    assert False": 1.0,
    "assert math.isclose(root(2), 2 ** 0.5)": 1.0,
    "a, b = Stack(), Stack()\na.push(1)\nb.push(2)\nassert merge(a, b) == [1, 2]": 1.0,
    "s = Stack()\nassert s == s and s != Stack()": 1.0,
    # Objects are compared by identity here: the solution's __eq__ never runs.
    "assert Stack() == Stack()": 0.0,
    "assert raw(1, 2) is not None": 0.0,  # a function's result must be plain data
    "Stack().items = [1]": 0.0,
}


def test_assert_tests_call_functions_classes_and_methods_with_plain_data() -> None:
    tests = list(OBJECT_TESTS)
    result = code_execution_reward(say(SOLUTION_OBJECTS), ground_truth={"tests": tests})
    got = {test: m.score for test, m in zip(tests, result.metrics.values(), strict=True)}
    assert got == OBJECT_TESTS, [m.reason for m in result.metrics.values()]
    reasons = [m.reason for m in result.metrics.values()]
    assert "the solution returned a Stack, not plain data" in reasons[-2], reasons[-2]


def test_tests_that_do_not_compile_are_invalid_requests() -> None:
    with pytest.raises(InvalidRequest, match=r"ground_truth\.tests\[1\]: not valid Python"):
        code_execution_reward(say("x = 1"), ground_truth={"tests": ["pass", "assert ("]})
    problem = dict(humaneval_problems()[0])
    with pytest.raises(InvalidRequest, match=r"ground_truth\.entry_point"):
        humaneval_reward(say("    pass\n"), ground_truth={**problem, "entry_point": "f()"})
    with pytest.raises(InvalidRequest, match=r"ground_truth\.test: not valid Python"):
        humaneval_reward(say("    pass\n"), ground_truth={**problem, "test": "def check(:"})


def test_a_prelude_that_fails_is_an_error_not_a_score() -> None:
    box = Sandbox(limits=Limits(wall_seconds=5))
    with pytest.raises(PreludeFailed, match="ValueError: no helpers"):
        run_python_tests(box, "def f():\n    return 1", ["assert f() == 1"],
                         prelude="raise ValueError('no helpers')")  # fmt: skip


def test_code_ground_truth_must_be_usable() -> None:
    with pytest.raises(InvalidRequest):
        code_execution_reward(say(ADD))
    with pytest.raises(InvalidRequest):
        code_execution_reward(say(ADD), ground_truth={"test_cases": [{"input": "1"}]})


def wrong_return(problem: dict[str, Any]) -> str:
    """The canonical body, but its return value perturbed (a plausible wrong answer)."""
    inner = textwrap.indent(problem["canonical_solution"], "    ")
    return (
        "    def _rk_inner():\n"
        f"{inner}\n"
        "    value = _rk_inner()\n"
        "    if isinstance(value, bool):\n        return not value\n"
        "    if isinstance(value, (int, float)):\n        return value + 1\n"
        "    if isinstance(value, str):\n        return value + 'x'\n"
        "    if isinstance(value, (list, tuple)):\n        return value + type(value)([None])\n"
        "    return ['wrong', value]\n"
    )


def _score(problem: dict[str, Any], body: str) -> float:
    return humaneval_reward(say(body), ground_truth=problem).score


def test_humaneval_sample_in_process() -> None:
    problems = humaneval_problems()
    assert len(problems) == 164
    for problem in problems[::20]:
        assert _score(problem, problem["canonical_solution"]) == 1.0, problem["task_id"]
        assert _score(problem, "    pass\n") == 0.0, problem["task_id"]
        assert _score(problem, wrong_return(problem)) == 0.0, problem["task_id"]


def test_humaneval_accepts_a_whole_fenced_function() -> None:
    problem = humaneval_problems()[0]
    full = problem["prompt"] + problem["canonical_solution"]
    assert _score(problem, f"Here you go:\n```python\n{full}\n```") == 1.0
    failed = humaneval_reward(say("x"), ground_truth=problem)
    assert failed.reason == "the code failed before the tests: NameError: name 'x' is not defined"
    with pytest.raises(InvalidRequest):
        humaneval_reward(say("x"), ground_truth={"prompt": "p"})


async def _through_engine(bodies: list[tuple[dict[str, Any], str]]) -> list[float | None]:
    engine = Engine(functions={"humaneval_reward": humaneval_reward})
    async with engine:
        calls = [
            Call(humaneval_reward, Item(say(body), ground_truth=problem), 60.0)
            for problem, body in bodies
        ]
        outcomes = await engine.run(calls)
    assert all(o.status == "ok" for o in outcomes), [o.error for o in outcomes if o.error]
    return [o.result["score"] if o.result else None for o in outcomes]


@pytest.mark.slow
def test_humaneval_all_164_through_the_engine_worker_pool() -> None:
    problems = humaneval_problems()
    variants: list[tuple[str, Callable[[dict[str, Any]], str], float]] = [
        ("canonical", lambda p: p["canonical_solution"], 1.0),
        ("pass", lambda p: "    pass\n", 0.0),
        ("wrong return", wrong_return, 0.0),
    ]
    for label, make, expected in variants:
        start = time.monotonic()
        scores = asyncio.run(_through_engine([(p, make(p)) for p in problems]))
        bad = [p["task_id"] for p, s in zip(problems, scores, strict=True) if s != expected]
        assert not bad, f"{label}: {bad}"
        print(f"{label}: 164 items in {time.monotonic() - start:.1f}s")


def test_engine_deadline_stops_a_sandboxed_run_and_leaves_nothing() -> None:
    """The engine's soft deadline (SIGALRM in the worker) interrupts the sandbox loop; the
    run's process group is killed in its ``finally``."""
    problem = humaneval_problems()[0]
    body = "    import time\n    time.sleep(60)\n"

    async def run() -> str:
        engine = Engine(functions={"humaneval_reward": humaneval_reward}, workers=1)
        async with engine:
            call = Call(humaneval_reward, Item(say(body), ground_truth=problem), 1.5)
            return (await engine.run([call]))[0].status

    start = time.monotonic()
    assert asyncio.run(run()) == "timeout"
    assert time.monotonic() - start < 15
