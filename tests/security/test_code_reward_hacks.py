"""Issue 11, item 2: assert-style and HumanEval code rewards cannot be passed by code that does
not compute the answers. Generic reward hacks a policy would find, each scored over a real
``rk-serve`` on HumanEval (all 164 problems for the always-equal object and the fd-writing
early exit, a spread sample for the others) and on assert-style tests; every one must score 0
while all 164 canonical solutions score 1.0.

A hack is a completion: ``{entry}`` is the problem's entry point. Each runs at call time or
at load time (the solution's top level) as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reward_kit.rewards import humaneval_problems

from ..conftest import require_integration, rk_serve

pytestmark = pytest.mark.integration

HUMANEVAL = "reward_kit.rewards:humaneval_reward"
CODE = "reward_kit.rewards:code_execution_reward"

# Equal to everything, ordered before and after everything, absorbing arithmetic, truthy,
# empty, close to anything (abs() of a difference is 0): what an in-process `==` would accept.
ALWAYS_EQUAL = """
class _Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __hash__(self): return 0
    def __bool__(self): return True
    def __len__(self): return 0
    def __iter__(self): return iter(())
    def __contains__(self, item): return True
    def __getitem__(self, key): return self
    def __abs__(self): return 0
    def __float__(self): return 0.0
    def __int__(self): return 0
    def __index__(self): return 0
    def __round__(self, *args): return self
    def __add__(self, other): return self
    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __mod__ = __add__
    __class__ = property(lambda self: int)  # isinstance(x, int) says True
def {entry}(*args, **kwargs):
    return _Anything()
"""

# "pass", the old harness's verdict lines and this harness's frames on every inherited fd,
# then an exit that skips every cleanup.
_FORGE = """
import json, os, struct
def _forge():
    lines = [b"pass\\n", b"0 pass\\n", b"loaded\\n", b"done\\n"]
    for message in (["ready"], ["loaded", []], [1, "value", True], [2, "value", 0]):
        data = json.dumps(message).encode()
        lines.append(struct.pack(">I", len(data)) + data)
    for fd in range(1024):
        for line in lines:
            try:
                os.write(fd, line)
            except OSError:
                pass
    os._exit(0)
"""
FD_FORGE_AT_CALL = _FORGE + "def {entry}(*args, **kwargs):\n    _forge()\n"
FD_FORGE_AT_LOAD = _FORGE + "_forge()\ndef {entry}(*args, **kwargs):\n    return None\n"


def subclass(base: str, value: str) -> str:
    return (
        f"class _Liar({base}):\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        f"    __hash__ = {base}.__hash__\n"
        "    __lt__ = __le__ = __gt__ = __ge__ = __eq__\n"
        "def {entry}(*args, **kwargs):\n"
        f"    return _Liar({value})\n"
    )


MONKEYPATCH = """
import builtins, math, sys
class _Never(Exception):
    pass
builtins.AssertionError = _Never
builtins.isinstance = lambda *args: True
builtins.abs = lambda x: 0
builtins.len = lambda x: 0
builtins.all = builtins.any = lambda x: True
math.isclose = lambda *args, **kwargs: True
sys.exit = lambda *args: None
__builtins__["AssertionError"] = _Never if isinstance(__builtins__, dict) else None
def {entry}(*args, **kwargs):
    import builtins
    builtins.AssertionError = _Never
    return None
"""

SAMPLE_HACKS = {
    "int subclass": subclass("int", "0"),
    "float subclass": subclass("float", "0.0"),
    "str subclass": subclass("str", "''"),
    "list subclass": subclass("list", "[]"),
    "tuple subclass": subclass("tuple", "()"),
    "dict subclass": subclass("dict", "{}"),
    "hash collision": (
        "class _Key(str):\n"
        "    def __hash__(self): return hash('')\n"
        "    def __eq__(self, other): return True\n"
        "def {entry}(*args, **kwargs):\n    return {_Key('a'): _Key('b')}\n"
    ),
    "list of liars": ALWAYS_EQUAL.replace("return _Anything()", "return [_Anything()] * 3"),
    "monkeypatched builtins": MONKEYPATCH,
    "fd forge at load": FD_FORGE_AT_LOAD,
    "sys.exit at load": "import sys\nsys.exit(0)\ndef {entry}(*args, **kwargs):\n    pass\n",
    "os._exit at load": "import os\nos._exit(0)\ndef {entry}(*args, **kwargs):\n    pass\n",
    "sys.exit in call": "import sys\ndef {entry}(*args, **kwargs):\n    sys.exit(0)\n",
    "SystemExit in call": "def {entry}(*args, **kwargs):\n    raise SystemExit(0)\n",
    "KeyboardInterrupt": "def {entry}(*args, **kwargs):\n    raise KeyboardInterrupt\n",
    "os._exit in call": "import os\ndef {entry}(*args, **kwargs):\n    os._exit(0)\n",
    "raise at import": "raise ImportError('nothing to see')\ndef {entry}(*a, **k):\n    pass\n",
    "kill parent": (
        "import os, signal\n"
        "def {entry}(*args, **kwargs):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    ),
    "kill everything": (
        "import os, signal\ndef {entry}(*args, **kwargs):\n    os.kill(-1, signal.SIGKILL)\n"
    ),
    "kill pid 1 and 2": (
        "import os, signal\n"
        "for pid in (1, 2):\n"
        "    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):\n"
        "        try:\n            os.kill(pid, sig)\n        except OSError:\n            pass\n"
        "def {entry}(*args, **kwargs):\n    return None\n"
    ),
    "huge list": "def {entry}(*args, **kwargs):\n    return list(range(3_000_000))\n",
    "huge output": (
        "import sys\n"
        "def {entry}(*args, **kwargs):\n"
        "    sys.stdout.write('pass\\n' * 5_000_000)\n    sys.stderr.write('x' * 10_000_000)\n"
        "    return 'x' * 20_000_000\n"
    ),
    "deep nesting": (
        "def {entry}(*args, **kwargs):\n"
        "    value = []\n    for _ in range(100_000):\n        value = [value]\n    return value\n"
    ),
    "recursive repr": (
        "class _Bomb:\n"
        "    def __repr__(self): return repr(self)\n"
        "    __str__ = __repr__\n"
        "    def __eq__(self, other): return True\n"
        "def {entry}(*args, **kwargs):\n    return _Bomb()\n"
    ),
    "recursive exception": (
        "class _Boom(Exception):\n"
        "    def __str__(self): return str(self)\n"
        "def {entry}(*args, **kwargs):\n    raise _Boom()\n"
    ),
}
# Hacks that only a deadline ends.
TIMED_HACKS = {
    "SIGSTOP self": (
        "import os, signal\n"
        "def {entry}(*args, **kwargs):\n    os.kill(os.getpid(), signal.SIGSTOP)\n"
    ),
    "ignore SIGTERM and spin": (
        "import signal\n"
        "for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
        "    signal.signal(sig, signal.SIG_IGN)\n"
        "def {entry}(*args, **kwargs):\n    while True:\n        pass\n"
    ),
}
# Stops every process it may signal, the harness's too: only the host's wall clock ends it.
STOP_EVERYTHING = (
    "import os, signal\nos.kill(-1, signal.SIGSTOP)\ndef {entry}(*args, **kwargs):\n    pass\n"
)


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


def item(problem: dict[str, Any], completion: str, **kwargs: Any) -> dict[str, Any]:
    text = completion.replace("{entry}", problem["entry_point"])
    return {"messages": say(text), "ground_truth": problem, "kwargs": kwargs}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    require_integration("bwrap")
    with rk_serve(HUMANEVAL, CODE, "--workers", "2", "--timeout", "120") as url:
        yield url


def scores(url: str, name: str, items: list[dict[str, Any]]) -> list[float]:
    response = httpx.post(f"{url}/batch_evaluate/{name}", json={"items": items}, timeout=600)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    bad = [r for r in results if r["status"] != "ok"]
    assert not bad, bad[:3]  # a hack is a 0, never an error
    return [r["result"]["score"] for r in results]


@pytest.mark.slow
def test_canonical_solutions_pass_and_the_two_main_hacks_fail_on_all_164(server: str) -> None:
    problems = humaneval_problems()
    assert len(problems) == 164
    variants = {
        "canonical": [item(p, p["canonical_solution"]) for p in problems],
        "always equal": [item(p, ALWAYS_EQUAL) for p in problems],
        "fd forge at call": [item(p, FD_FORGE_AT_CALL) for p in problems],
    }
    got = {name: scores(server, "humaneval_reward", items) for name, items in variants.items()}
    failed = [p["task_id"] for p, s in zip(problems, got["canonical"], strict=True) if s != 1.0]
    assert not failed, f"canonical solutions that did not pass: {failed}"
    for name in ("always equal", "fd forge at call"):
        passed = [p["task_id"] for p, s in zip(problems, got[name], strict=True) if s != 0.0]
        assert not passed, f"{name} scored on {passed}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [*SAMPLE_HACKS, *TIMED_HACKS])
def test_every_generic_hack_fails_on_all_164(server: str, name: str) -> None:
    problems = humaneval_problems()
    hack = SAMPLE_HACKS.get(name) or TIMED_HACKS[name]
    # A deadline of 0.5 s a run: the timed hacks (a stopped or spinning solution) end there.
    got = scores(server, "humaneval_reward", [item(p, hack, timeout_per_run=0.5) for p in problems])
    passed = [p["task_id"] for p, s in zip(problems, got, strict=True) if s]
    assert not passed, f"{name} scored on {passed}"


def test_stopping_every_process_of_the_run_is_a_zero(server: str) -> None:
    problems = humaneval_problems()[:2]
    items = [item(p, STOP_EVERYTHING, timeout_per_run=1) for p in problems]
    assert scores(server, "humaneval_reward", items) == [0.0, 0.0]


ASSERT_TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(-1, 1) == 0"]
# The same hacks against assert-style tests, plus the ones only they allow: shadowing the
# builtins or the modules a test uses.
ASSERT_HACKS = {
    "always equal": ALWAYS_EQUAL.replace("{entry}", "add"),
    "int subclass": subclass("int", "0").replace("{entry}", "add"),
    "fd forge at call": FD_FORGE_AT_CALL.replace("{entry}", "add"),
    "fd forge at load": FD_FORGE_AT_LOAD.replace("{entry}", "add"),
    "monkeypatched builtins": MONKEYPATCH.replace("{entry}", "add"),
    "shadowed abs": "abs = lambda x: 0\ndef add(a, b):\n    return 99.0\n",
    "patched math": (
        "import math\nmath.isclose = lambda *a, **k: True\ndef add(a, b):\n    return 99.0\n"
    ),
    "planted modules": (
        "import os\n"
        "for folder in ('.', '/tmp'):\n"
        "    for name in ('math', 'statistics', 'random'):\n"
        "        with open(os.path.join(folder, name + '.py'), 'w') as handle:\n"
        "            handle.write('isclose = fmean = lambda *a, **k: 2\\n')\n"
        "def add(a, b):\n    return 99.0\n"
    ),
    "class instead": "class add:\n    def __init__(self, *args):\n        pass\n"
    "    def __eq__(self, other):\n        return True\n",
}
CLOSE_TESTS = [
    "assert abs(add(1.5, 1.5) - 3.0) < 1e-9",
    "assert math.isclose(add(1, 1), 2)",  # the solution's `import math`: the real module here
    "import math\nassert math.isclose(add(1, 1), 2)",
    "import statistics\nassert statistics.fmean([add(1, 1), 2]) == 2",  # not imported yet
]


def test_assert_style_tests_cannot_be_passed_by_hacks(server: str) -> None:
    items = [
        {"messages": say(code), "ground_truth": {"tests": tests}}
        for code in ASSERT_HACKS.values()
        for tests in (ASSERT_TESTS, CLOSE_TESTS)
    ]
    got = scores(server, "code_execution_reward", items)
    labels = [name for name in ASSERT_HACKS for _ in range(2)]
    assert [label for label, s in zip(labels, got, strict=True) if s != 0.0] == []
    honest = "import math\ndef add(a, b):\n    return a + b\n"
    control = [{"messages": say(honest), "ground_truth": {"tests": ASSERT_TESTS + CLOSE_TESTS}}]
    assert scores(server, "code_execution_reward", control) == [1.0]
