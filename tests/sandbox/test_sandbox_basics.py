"""The sandbox's ordinary behaviour: running code, stdin, files, statuses, and its fallbacks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from reward_kit.sandbox import Limits, Sandbox, SandboxUnavailable


@pytest.mark.integration
def test_runs_code_with_stdin_and_files(sandbox: Sandbox) -> None:
    run = sandbox.run_python(
        "import sys, helper\nprint(helper.double(int(sys.stdin.read())))",
        stdin="21",
        files={"helper.py": "def double(x):\n    return 2 * x\n"},
    )
    assert (run.status, run.stdout, run.exit_code, run.isolation) == ("ok", "42\n", 0, "bubblewrap")


@pytest.mark.integration
def test_a_failing_program_is_an_error_with_its_exit_code(sandbox: Sandbox) -> None:
    run = sandbox.run_python("raise SystemExit(3)")
    assert (run.status, run.exit_code, run.signal) == ("error", 3, None)
    crashed = sandbox.run_python("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert (crashed.status, crashed.signal) == ("killed", "SIGSEGV")


@pytest.mark.integration
def test_large_stdin_is_fed_without_deadlock(sandbox: Sandbox) -> None:
    data = "x" * 1_000_000
    run = sandbox.run_python("import sys\nprint(len(sys.stdin.read()))", stdin=data)
    assert run.stdout == "1000000\n"


@pytest.mark.integration
def test_file_names_must_be_plain(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="plain names"):
        sandbox.run_python("pass", files={"../escape.py": "x"})


def test_missing_bubblewrap_is_a_clear_error() -> None:
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        Sandbox(bwrap="/nonexistent/bwrap")


def test_weak_fallback_is_explicit_and_still_limits_time_and_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RK_TEST_SERVER_SECRET", "ENV-SECRET")
    weak = Sandbox(
        bwrap="/nonexistent/bwrap",
        allow_weak_sandbox=True,
        limits=Limits(wall_seconds=2, cpu_seconds=1, max_output_bytes=1000),
    )
    assert weak.isolation == "weak"
    run = weak.run_python("import os\nprint(sorted(os.environ))")
    assert run.status == "ok"
    assert "RK_TEST_SERVER_SECRET" not in run.stdout
    assert weak.run_python("while True:\n    pass").status == "cpu_limit"
    assert weak.run_python("import time\ntime.sleep(60)").status == "timeout"
    assert weak.run_python("print('x' * 5000)").status == "output_limit"


@pytest.mark.parametrize(
    "bad",
    [{"cpu_seconds": 0}, {"memory_mb": -1}, {"max_output_bytes": 1.5}, {"wall_seconds": True}],
)
def test_limits_reject_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Limits"):
        Limits(**bad)  # type: ignore[arg-type]


def test_cpu_rlimit_rounds_up_and_leaves_a_kill_gap() -> None:
    assert Limits(cpu_seconds=1.2).rlimits(processes=False)["RLIMIT_CPU"] == (2, 3)
    assert "RLIMIT_NPROC" in Limits().rlimits(processes=True)


@pytest.mark.integration
def test_runs_in_threads_keep_to_their_own_file_descriptors(sandbox: Sandbox) -> None:
    """A threaded server (--workers 0) runs sandboxes side by side: none may close a file
    descriptor another run is using (an fd closed twice can be another thread's by then)."""

    def run(i: int) -> tuple[str, str]:
        result = sandbox.run_python(
            f"import data\nprint(data.VALUE + {i})", files={"data.py": "VALUE = 1000"}
        )
        return result.status, result.stdout

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(200)))
    assert results == [("ok", f"{1000 + i}\n") for i in range(200)]
