"""Runs inside the sandbox as ``main.py``: the solution against each test, one verdict each.

Executed by the sandbox's interpreter (``python -E -s -B main.py``), so it imports nothing
from reward-kit. Files: ``rk_solution.py``, ``rk_tests.json`` (``{"tests": [sources],
"sweep": bool}``) and ``rk_nonce`` (32 bytes the host tags verdict lines with).

Why two processes: code that shares an interpreter with the code that reports verdicts can
read whatever that code knows and print what it would print. So this process, the only one
that writes to stdout (the host reads verdicts there), never runs model code. Each test runs
in a forked child that execs the solution, then the test, in a fresh namespace, and reports
one message on its own pipe; this process turns it into a verdict line. The child:

* cannot reach the host's stdout: its fds 0-2 are /dev/null and every other fd is closed;
  this process is not dumpable, so ``/proc/<ppid>/fd/1``, ``/proc/<ppid>/mem`` and ptrace
  are denied to it (bubblewrap's init is not dumpable either);
* has no copy of the nonce: it is read into one bytearray (never a str or bytes object), which
  the child zeroes before any model code runs, and written with ``os.writev`` (no copies);
  it is in no file, argument or environment variable by then;
* passes a test only by reporting "pass" after the test's code returned: ``sys.exit``,
  ``os._exit``, a crash or a kill before that is a failure with the reason.

What model code in the child can still do is tamper with its own test: replace what the test
calls, return objects whose ``__eq__`` is always true, or find the report pipe among its own
fds and write a report on it. Tests run in-process (as in the HumanEval harness) cannot rule
that out; stdin/stdout cases, compared by the host, can.
"""

import contextlib
import ctypes
import json
import os
import signal
import sys
from typing import NoReturn

_PR_SET_DUMPABLE = 4
_MAX_DETAIL = 300


def _undumpable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def _read_nonce() -> bytearray:
    nonce = bytearray(32)
    fd = os.open("rk_nonce", os.O_RDONLY)
    try:
        if os.readv(fd, [nonce]) != len(nonce):
            raise ValueError("rk_nonce: expected 32 bytes")
    finally:
        os.close(fd)
    os.unlink("rk_nonce")
    return nonce


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _child(solution: str, test: str, index: int, report: int) -> NoReturn:
    """In the forked child: never returns."""
    write, exit_now = os.write, os._exit  # the code may replace os.write or os._exit
    try:
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            exec(compile(solution, "solution.py", "exec"), namespace)
        except BaseException as error:  # SystemExit too: leaving early is no pass
            message = "setup " + _describe(error)
        else:
            try:
                exec(compile(test, f"test_{index}", "exec"), namespace)
                message = "pass"
            except BaseException as error:
                message = "fail " + _describe(error)
        write(report, message[:_MAX_DETAIL].encode(errors="replace"))
    finally:
        exit_now(0)


def _isolate(nonce: bytearray, keep: int) -> None:
    """In the child, before model code: no nonce, no stdio of the host, no other fds."""
    for i in range(len(nonce)):
        nonce[i] = 0
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)


def _run_test(nonce: bytearray, solution: str, test: str, index: int) -> str:
    """Fork a child for one test; its verdict: 'pass', 'fail ...', 'setup ...'."""
    sys.stdout.flush()
    sys.stderr.flush()
    read, report = os.pipe()  # both above 2: stdio is open
    try:
        pid = os.fork()
    except OSError as error:
        os.close(read)
        os.close(report)
        return "fail could not start a process for the test: " + _describe(error)
    if pid == 0:
        try:
            os.close(read)
            _isolate(nonce, report)
        except BaseException:
            os._exit(1)
        _child(solution, test, index, report)
    os.close(report)
    _, status = os.waitpid(pid, 0)
    # Whatever the child wrote is in the pipe now; a process it forked may hold the write end
    # open, so read without waiting for the end of the pipe.
    os.set_blocking(read, False)
    try:
        data = os.read(read, 4 * _MAX_DETAIL)
    except BlockingIOError:
        data = b""
    os.close(read)
    message = " ".join(data.decode(errors="replace").split())[:_MAX_DETAIL]
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (CPU time limit, or killed)"}
        return "fail killed by " + name + hint.get(name, "")
    code = os.WEXITSTATUS(status)
    if code == 0 and (message == "pass" or message.startswith(("fail ", "setup "))):
        return message
    return f"fail the code ended its process (exit code {code}) before the test finished"


def _sweep(enabled: bool) -> None:
    """End whatever a test left running (a forked helper, a daemon), so it cannot use the next
    tests' CPU, memory or process slots. Only in the sandbox's own PID namespace, where this
    process is pid 2 and kill(-1) reaches this run's processes alone (never the init, pid 1):
    outside it (the weak sandbox), kill(-1) would reach every process of the user."""
    if enabled and os.getpid() == 2 and os.getppid() == 1:
        with contextlib.suppress(ProcessLookupError):  # nothing left
            os.kill(-1, signal.SIGKILL)


def main() -> None:
    _undumpable()
    with open("rk_tests.json") as handle:
        spec = json.load(handle)
    tests, sweep = spec["tests"], spec["sweep"] is True
    with open("rk_solution.py") as handle:
        solution = handle.read()
    nonce = _read_nonce()
    for index, test in enumerate(tests):
        verdict = _run_test(nonce, solution, test, index)
        _sweep(sweep)
        if verdict.startswith("setup "):
            os.writev(1, [nonce, b" setup " + verdict[6:].encode() + b"\n"])
            break
        os.writev(1, [nonce, b" %d " % index + verdict.encode() + b"\n"])
    os.writev(1, [nonce, b" done\n"])


if __name__ == "__main__":
    main()
