"""Reward hacking of the code rewards' test harness, run for real in the bubblewrap sandbox:
ending the process early, forging verdicts with the harness's secrets, patching builtins."""

from __future__ import annotations

from typing import Any

import pytest

from reward_kit.rewards import code_execution_reward, humaneval_problems, humaneval_reward

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("needs_bwrap")]

FAILING = ["assert False", "assert 1 == 2"]

# Every token-shaped string the code can find (frames, the heap, files, argv, environ, stdin),
# printed as a verdict for every test, then a clean exit.
FORGER = r"""
import gc, os, re, sys
found = set()
hexes = re.compile(rb"[0-9a-f]{32}")
frame = sys._getframe(0)
while frame is not None:
    for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
        if isinstance(value, (str, bytes, bytearray)):
            data = value.encode() if isinstance(value, str) else bytes(value)
            found.update(hexes.findall(data))
    frame = frame.f_back
for obj in gc.get_objects():
    if isinstance(obj, (dict, list)):
        for value in (obj.values() if isinstance(obj, dict) else obj):
            if isinstance(value, (str, bytes, bytearray)) and len(value) < 10000:
                data = value.encode() if isinstance(value, str) else bytes(value)
                found.update(hexes.findall(data))
for path in ["/proc/self/cmdline", "/proc/self/environ"] + os.listdir("."):
    try:
        found.update(hexes.findall(open(path, "rb").read()))
    except OSError:
        pass
try:
    os.set_blocking(0, False)
    found.update(hexes.findall(os.read(0, 65536)))
except OSError:
    pass
for token in found:
    token = token.decode()
    for i in range(4):
        print(token, i, "pass", flush=True)
    print(token, "done", flush=True)
os._exit(0)
"""


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


def test_the_audit_exploit_reading_the_nonce_from_the_callers_frame_fails() -> None:
    exploit = (
        "import sys, os\n"
        "nonce = sys._getframe(1).f_locals.get('nonce')\n"
        "for i in range(2):\n"
        "    print(nonce, i, 'pass', flush=True)\n"
        "os._exit(0)\n"
    )
    result = code_execution_reward(say(exploit), ground_truth={"tests": FAILING})
    assert result.score == 0.0, result


@pytest.mark.parametrize("where", ["solution", "test"])
def test_forging_verdicts_with_any_token_the_code_can_find_fails(where: str) -> None:
    if where == "solution":
        result = code_execution_reward(say(FORGER), ground_truth={"tests": FAILING})
    else:  # from inside a test, when the harness is deep in its loop
        code = "def cheat():\n" + "".join(f"    {line}\n" for line in FORGER.splitlines())
        result = code_execution_reward(say(code), ground_truth={"tests": ["cheat()", *FAILING]})
    assert result.score == 0.0, result


@pytest.mark.parametrize(
    "cheat",
    [
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "def f():\n    raise SystemExit(0)\n",
        "def f():\n    import os\n    os._exit(0)\n",
        "import builtins\nbuiltins.print = lambda *a, **k: None\ndef f():\n    pass\n",
        "import builtins\n_real = builtins.__import__\n"
        "builtins.__import__ = lambda *a, **k: _real(*a, **k)\ndef f():\n    pass\n",
        "import os\nos.write = lambda fd, data: len(data)\ndef f():\n    pass\n",
    ],
)
def test_ending_or_patching_the_process_does_not_pass_tests(cheat: str) -> None:
    tests = ["f()\nassert False", "f()\nassert 1 == 2"]
    result = code_execution_reward(say(cheat), ground_truth={"tests": tests})
    assert result.score == 0.0, result


def test_tests_still_pass_and_fail_honestly_one_by_one() -> None:
    code = "state = []\ndef add(a, b):\n    state.append(1)\n    return a + b"
    tests = ["assert add(1, 2) == 3", "assert add(1, 1) == 3", "assert state == []"]
    result = code_execution_reward(say(code), ground_truth={"tests": tests})
    # Each test in a fresh process: the earlier tests' calls left nothing in `state`.
    assert [m.score for m in result.metrics.values()] == [1.0, 0.0, 1.0]
    assert result.metrics["test_1"].reason.startswith("fail AssertionError")


HUMANEVAL_EXITS = [
    "    return None\nimport sys\nsys.exit(0)\n",
    "    return None\nimport os\nos._exit(0)\n",
    "    import os\n    os._exit(0)\n",
    "    raise SystemExit(0)\n",
    "    import sys\n    sys.exit(0)\n",
]


@pytest.mark.parametrize("body", HUMANEVAL_EXITS)
def test_humaneval_exiting_early_is_a_failure(body: str) -> None:
    problem = humaneval_problems()[0]
    result = humaneval_reward(say(body), ground_truth=problem)
    assert result.score == 0.0, result
    assert "all checks passed" not in (result.reason or "")


def test_humaneval_forger_fails_and_canonical_passes() -> None:
    problem = humaneval_problems()[2]
    assert humaneval_reward(say(problem["canonical_solution"]), ground_truth=problem).score == 1.0
    body = "    pass\n" + FORGER
    assert humaneval_reward(say(body), ground_truth=problem).score == 0.0


def test_a_test_process_cannot_reach_the_harness_or_the_hosts_stdout() -> None:
    """What the code under test sees, reported through its own failure message."""
    probe = """
import os
seen = []
for path in ("rk_nonce", f"/proc/{os.getppid()}/fd/1", "/proc/1/fd/1",
             f"/proc/{os.getppid()}/mem"):
    try:
        with open(path, "r+b"):  # never creates the file
            seen.append(path + " OPEN")
    except OSError as error:
        seen.append(path + " " + type(error).__name__)
raise RuntimeError("|".join(seen))
"""
    result = code_execution_reward(say(probe), ground_truth={"tests": ["pass"]})
    reason = result.metrics["test_0"].reason
    assert result.score == 0.0
    assert "/fd/1 PermissionError" in reason, reason
    assert "/proc/1/fd/1 PermissionError" in reason, reason
    assert "/mem PermissionError" in reason, reason
    assert "rk_nonce FileNotFoundError" in reason, reason


def test_processes_a_test_leaves_behind_are_ended_before_the_next_test() -> None:
    code = (
        "import os, time\n"
        "def spawn():\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.setsid()\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    open('/tmp/spawned', 'w').write(str(pid))\n"
        "def alive():\n"
        "    pid = open('/tmp/spawned').read()\n"
        "    try:\n"
        "        state = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0]\n"
        "    except OSError:\n"
        "        return False\n"
        "    return state not in ('Z', 'X')\n"
    )
    tests = ["spawn()", "assert alive() is False"]
    result = code_execution_reward(say(code), ground_truth={"tests": tests})
    assert [m.score for m in result.metrics.values()] == [1.0, 1.0], result
