"""The code rewards' test harness under faults and load, for real in the bubblewrap sandbox:
harness failures are errors (never a score), the solution loads once, and the nonce that
tags verdict lines is nowhere model code can read it."""

from __future__ import annotations

import hashlib
import secrets
import time
from types import SimpleNamespace
from typing import Any

import pytest

from reward_kit.rewards import code_execution_reward, humaneval_problems, humaneval_reward
from reward_kit.sandbox import SandboxUnavailable, _testrun

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("needs_bwrap")]


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


def inject(monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    """Run a harness with ``old`` (which must be in it) replaced by ``new``."""
    assert old in _testrun._HARNESS, old
    monkeypatch.setattr(_testrun, "_HARNESS", _testrun._HARNESS.replace(old, new, 1))


# --- 1. a harness failure is an error, never a score ----------------------------------------


def test_a_harness_that_fails_before_starting_is_an_error_not_a_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inject(monkeypatch, "    _set_dumpable(0)\n", "    raise OSError(38, 'injected: no prctl')\n")
    with pytest.raises(SandboxUnavailable, match="injected: no prctl"):
        code_execution_reward(say("def f(): pass"), ground_truth={"tests": ["f()"]})
    problem = humaneval_problems()[0]
    with pytest.raises(SandboxUnavailable, match="before running any code"):
        humaneval_reward(say(problem["canonical_solution"]), ground_truth=problem)


def test_a_harness_that_cannot_fork_before_any_model_code_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inject(
        monkeypatch,
        "            self.pid = os.fork()\n",
        "            raise BlockingIOError(11, 'Resource temporarily unavailable')\n",
    )
    with pytest.raises(SandboxUnavailable, match="could not start the solution's process"):
        code_execution_reward(say("def f(): pass"), ground_truth={"tests": ["f()", "f()"]})


def test_a_solution_process_that_fails_before_running_model_code_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = _testrun._FILES["rk_server.py"]
    ready = '    wire.write_frame(CONTROL_FD, ["ready"])\n'
    assert ready in server
    files = {**_testrun._FILES, "rk_server.py": server.replace(ready, "    os._exit(3)\n", 1)}
    monkeypatch.setattr(_testrun, "_FILES", files)
    with pytest.raises(SandboxUnavailable, match="the solution's process did not start"):
        code_execution_reward(say("def f(): pass"), ground_truth={"tests": ["f()"]})


def test_a_fork_bomb_in_a_test_is_the_codes_failure_and_the_next_test_still_runs() -> None:
    code = "import os\ndef bomb():\n    while True:\n        os.fork()\n"
    result = code_execution_reward(
        say(code), ground_truth={"tests": ["bomb()", "assert 1 + 1 == 2"]}, timeout_per_run=5
    )
    assert result.is_score_valid
    assert [m.score for m in result.metrics.values()] == [0.0, 1.0], result


# --- 2. the solution loads once; each test has its own time budget --------------------------


def test_a_slow_import_is_paid_once_not_per_test() -> None:
    # 0.25 s of "imports" x 40 tests would be 10 s: far past a 3 s budget if paid per test.
    code = "import time\ntime.sleep(0.25)\ndef add(a, b):\n    return a + b\n"
    tests = [f"assert add({i}, 1) == {i + 1}" for i in range(40)]
    start = time.monotonic()
    result = code_execution_reward(say(code), ground_truth={"tests": tests}, timeout_per_run=3)
    assert result.score == 1.0, [m.reason for m in result.metrics.values() if m.score < 1]
    assert time.monotonic() - start < 20


def test_slow_tests_each_get_their_own_budget() -> None:
    # Each test takes 1 s of a 2 s budget: 4 s together, past what one shared budget allowed.
    code = "import time\ndef slow():\n    time.sleep(1)\n    return 1\n"
    result = code_execution_reward(
        say(code), ground_truth={"tests": ["assert slow() == 1"] * 4}, timeout_per_run=2
    )
    assert result.score == 1.0, result


def test_code_that_loads_too_slowly_fails_every_test_as_a_score() -> None:
    code = "import time\ntime.sleep(30)\n"
    result = code_execution_reward(
        say(code), ground_truth={"tests": ["pass", "pass"]}, timeout_per_run=1
    )
    assert (result.score, result.is_score_valid) == (0.0, True)
    assert "did not finish loading within 1s" in result.metrics["test_0"].reason


# --- 4. the nonce is unreadable by model code ---------------------------------------------

# Searches everything the code can reach for a secret 32-hex token (the nonce, or a token in
# the tests), of which it knows only the SHA-256, at load time and again during a call, in
# every process it can read, and reports what it found: as its failure message, or as the
# value of `hunt()`.
PROBE = r"""
import gc, hashlib, os, re, sys
TARGET = "%s"
RUNS = re.compile(rb"[0-9a-f]{32,}")
found, scanned = set(), [0]

def check(where, data):
    if isinstance(data, str):
        data = data.encode(errors="ignore")
    data = bytes(data)
    scanned[0] += len(data)
    for run in RUNS.findall(data):
        for i in range(len(run) - 31):
            if hashlib.sha256(run[i:i + 32]).hexdigest() == TARGET:
                found.add(where)

def read(path, where):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            check(where, os.read(fd, 1 << 20))
        finally:
            os.close(fd)
    except OSError:
        pass

def memory(pid, where):
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    except OSError:
        return
    with mem:
        for line in maps:
            span, perms = line.split()[:2]
            if perms[0] != "r" or "[vvar" in line or "[vsyscall" in line:
                continue
            low, high = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(low)
                check(where, mem.read(high - low))
            except (OSError, OverflowError, ValueError, MemoryError):
                pass

def search():
    found.clear()
    scanned[0] = 0
    frame = sys._getframe(0)
    while frame is not None:
        for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
            if isinstance(value, (str, bytes, bytearray)):
                check("frames", value)
        frame = frame.f_back
    for obj in gc.get_objects():
        for value in [obj] + gc.get_referents(obj):
            if isinstance(value, (str, bytes, bytearray)):
                check("heap", value)
    for pid in ["self"] + [name for name in os.listdir("/proc") if name.isdigit()]:
        for name in ("cmdline", "environ"):
            read(f"/proc/{pid}/{name}", f"{pid}/{name}")
        memory(pid, f"{pid}/mem")
    for fd in os.listdir("/proc/self/fd"):
        read(f"/proc/self/fd/{fd}", "fd")
    for name in os.listdir("."):
        read(name, "workdir")
    return ("LEAK " + ",".join(sorted(found))) if found else f"clean {scanned[0] >> 20}MiB"

AT_LOAD = search()

def probe():
    raise AssertionError(f"load: {AT_LOAD}; test: {search()}")

def hunt():
    return [AT_LOAD, search()]
"""


def probe_reason(monkeypatch: pytest.MonkeyPatch) -> str:
    nonce = secrets.token_hex(16)
    monkeypatch.setattr(_testrun, "secrets", SimpleNamespace(token_hex=lambda _n: nonce))
    target = hashlib.sha256(nonce.encode()).hexdigest()
    result = code_execution_reward(
        say(PROBE % target), ground_truth={"tests": ["probe()"]}, timeout_per_run=10
    )
    return result.metrics["test_0"].reason


def test_model_code_cannot_find_the_nonce_anywhere_it_can_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reason = probe_reason(monkeypatch)
    assert "load: clean" in reason, reason
    assert "test: clean" in reason, reason
    assert "LEAK" not in reason, reason
    # The search read real memory (its own process's), not nothing.
    assert int(reason.split("test: clean ")[1].split("MiB")[0]) >= 1, reason


def test_the_nonce_probe_detects_a_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: a harness that forgets to zero its copy of the nonce is caught."""
    inject(monkeypatch, "        nonce[i] = 0\n", "        pass\n")
    reason = probe_reason(monkeypatch)
    assert "load: LEAK" in reason, reason
    assert "test: LEAK" in reason, reason


# --- 5. the tests (the expected answers) are unreadable by model code ---------------------


def answer_key_reason() -> str:
    token = secrets.token_hex(16)
    code = PROBE % hashlib.sha256(token.encode()).hexdigest()
    test = (
        f"result = hunt()\nassert all(r.startswith('clean') for r in result), (result, '{token}')"
    )
    result = code_execution_reward(say(code), ground_truth={"tests": [test]}, timeout_per_run=10)
    return result.metrics["test_0"].reason


def test_model_code_cannot_find_the_tests_it_is_judged_by() -> None:
    reason = answer_key_reason()
    assert reason == "passed", reason


def test_the_answer_key_probe_detects_a_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: a harness that leaves the tests' file in the work dir is caught."""
    inject(monkeypatch, '    os.unlink("rk_tests.json")\n', "    pass\n")
    reason = answer_key_reason()
    assert "LEAK workdir" in reason, reason
