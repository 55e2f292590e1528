"""Runs inside the sandbox as ``main.py``: the solution against each test, one verdict each.

Executed by the sandbox's interpreter (``python -E -s -B main.py``), so it imports nothing
from reward-kit. Files: ``rk_solution.py``, ``rk_tests.json`` (``{"tests": [sources],
"sweep": bool, "seconds": float}``) and ``rk_nonce`` (32 bytes the host tags lines with).

Lines on stdout, each ``<nonce> ...``: ``start`` once this process is set up, before any
model code runs (the host treats a run without it as a sandbox failure, never as a score);
``error <why>`` when this process cannot start the solution's process (also a sandbox
failure); ``setup <why>`` when the solution failed to load; ``<i> pass|fail <why>`` per test;
``done``.

Three kinds of process. This one, the only one that writes to stdout, never runs model code.
It forks the *solution process*, which zeroes its copy of the nonce, loses stdio, loads the
solution once (imports and all) and then, one test at a time when told to, forks a *test
process* that runs the test in a copy of the loaded namespace and reports on its own pipe.
The solution process relays one line per test back here. So:

* no model code can reach the host's stdout: fds 0-2 are /dev/null and every other fd is
  closed; this process is not dumpable, so ``/proc/<pid>/fd/1``, ``/proc/<pid>/mem`` and
  ptrace are denied (bubblewrap's init is not dumpable either);
* no model code holds the nonce: it is read into one bytearray (never a str or bytes object),
  zeroed in the solution process before the solution runs, written with ``os.writev``;
* a test passes only on "pass" sent after the test's code returned; every deadline is kept
  here, in the process that runs no model code: ``seconds`` to load the solution, then
  ``seconds`` per test. A test past its deadline fails; the solution process is killed and a
  fresh one loads the solution for the next test.

Model code can still tamper with its own verdicts (replace what the test calls, find a report
pipe among its fds and write "pass"), as in any in-process harness; the solution's top-level
code runs in the process that relays verdicts, so it can forge every test's verdict, as it
could when it ran again in every test's process. stdin/stdout cases, compared by the host,
cannot be forged.
"""

import contextlib
import ctypes
import json
import os
import select
import signal
import sys
import time
from typing import Any, NoReturn

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


def _say(nonce: bytearray, text: str) -> None:
    os.writev(1, [nonce, b" " + text.encode(errors="replace") + b"\n"])


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _clean(text: str) -> str:
    return " ".join(text.split())[:_MAX_DETAIL]


# --- the solution process and its test processes (model code runs here) -------------------


def _isolate(nonce: bytearray, keep: tuple[int, ...]) -> None:
    """Before model code: no nonce, no stdio of the host, no fds but ``keep``."""
    for i in range(len(nonce)):
        nonce[i] = 0
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def _test_process(namespace: dict[str, Any], test: str, index: int, report: int) -> NoReturn:
    write, exit_now = os.write, os._exit  # the test may replace os.write or os._exit
    try:
        try:
            exec(compile(test, f"test_{index}", "exec"), namespace)
            message = "pass"
        except BaseException as error:  # SystemExit too: leaving early is no pass
            message = "fail " + _describe(error)
        write(report, message[:_MAX_DETAIL].encode(errors="replace"))
    finally:
        exit_now(0)


def _run_test(
    calls: Any, namespace: dict[str, Any], test: str, index: int, inherited: tuple[int, int]
) -> str:
    """Fork a process for one test; its verdict: 'pass' or 'fail ...'."""
    read, report = calls.pipe()
    try:
        pid = calls.fork()
    except OSError as error:
        calls.close(read)
        calls.close(report)
        return "fail could not start a process for the test: " + _describe(error)
    if pid == 0:
        calls.close(read)
        for fd in inherited:  # the solution process's pipes to the harness
            calls.close(fd)
        _test_process(namespace, test, index, report)
    calls.close(report)
    _, status = calls.waitpid(pid, 0)
    # A process the test forked may hold the write end open: read without waiting for EOF.
    calls.set_blocking(read, False)
    try:
        data = calls.read(read, 4 * _MAX_DETAIL)
    except BlockingIOError:
        data = b""
    calls.close(read)
    message = _clean(data.decode(errors="replace"))
    if os.WIFSIGNALED(status):
        return "fail killed by " + _signal_name(os.WTERMSIG(status))
    code = os.WEXITSTATUS(status)
    if code == 0 and (message == "pass" or message.startswith("fail ")):
        return message
    return f"fail the code ended its process (exit code {code}) before the test finished"


class _Calls:
    """The os functions the solution process needs, taken before the solution can replace
    them (``os.write = ...`` at its top level)."""

    def __init__(self) -> None:
        self.pipe, self.fork, self.close, self.waitpid = os.pipe, os.fork, os.close, os.waitpid
        self.set_blocking, self.read, self.write = os.set_blocking, os.read, os.write
        self.exit = os._exit


def _solution_process(
    solution: str, tests: list[str], start: int, relay: int, control: int
) -> NoReturn:
    calls = _Calls()
    try:
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            exec(compile(solution, "solution.py", "exec"), namespace)
        except BaseException as error:  # SystemExit too: leaving early is no pass
            calls.write(relay, ("setup " + _clean(_describe(error)) + "\n").encode())
            tests = []
        else:
            calls.write(relay, b"loaded\n")
        for index in range(start, len(tests)):
            if calls.read(control, 1) != b"g":  # the harness is done with us
                break
            verdict = _run_test(calls, namespace, tests[index], index, (relay, control))
            calls.write(relay, f"{index} {verdict}\n".encode(errors="replace"))
    finally:
        calls.exit(0)


# --- this process: deadlines and verdict lines (no model code runs here) --------------------


def _signal_name(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    hint = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (CPU time limit, or killed)"}
    return name + hint.get(name, "")


def _in_own_pid_namespace(enabled: bool) -> bool:
    """Only in the sandbox's own PID namespace (this process pid 2 under bubblewrap's init)
    does ending "every other process" mean this run's processes alone."""
    return enabled and os.getpid() == 2 and os.getppid() == 1


def _sweep(enabled: bool, spare: int) -> None:
    """End whatever a test (or the solution's top level) left running, so it cannot use the
    next tests' CPU, memory or process slots; ``spare`` is the solution process (0: none)."""
    if not _in_own_pid_namespace(enabled):
        return
    if not spare:
        with contextlib.suppress(ProcessLookupError):  # nothing left
            os.kill(-1, signal.SIGKILL)
        return
    until = time.monotonic() + 2.0
    while time.monotonic() < until:
        others = [pid for pid in _living() if pid not in (1, 2, spare)]
        if not others:
            return
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.001)


def _living() -> list[int]:
    """Processes that are not zombies (a zombie holds no CPU or memory; its parent reaps it)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
                if data[data.rfind(b")") + 2 :][:1] not in (b"Z", b"X"):
                    pids.append(int(name))
    return pids


class _Lines:
    """Lines from the solution process, under a deadline; never more than a line's worth."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.ended = fd, b"", False

    def next(self, deadline: float) -> str | None:
        """The next line; None at EOF; raises TimeoutError past ``deadline``."""
        while b"\n" not in self.buffer:
            if self.ended:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(self.fd, 4096)
            self.ended = not chunk
            self.buffer = (self.buffer + chunk)[-4 * _MAX_DETAIL :]
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace")


def _end(pid: int, sweep: bool) -> str:
    """Kill the solution process (and, in the sandbox's PID namespace, everything else)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _sweep(sweep, 0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "killed by " + _signal_name(os.WTERMSIG(status))
    return f"exit code {os.WEXITSTATUS(status)}"


def _serve(nonce: bytearray, spec: dict[str, Any], solution: str, start: int) -> int:
    """Load the solution in a fresh process and run tests from ``start``; the next test to
    run (``len(tests)`` when done)."""
    tests, sweep, seconds = spec["tests"], spec["sweep"] is True, float(spec["seconds"])
    read, relay = os.pipe()
    control, go = os.pipe()
    try:
        pid = os.fork()
    except OSError as error:
        if start == 0:  # no model code ran yet: the sandbox failed, not the code
            _say(nonce, "error could not start the solution's process: " + _describe(error))
            return -1
        for index in range(start, len(tests)):
            _say(nonce, f"{index} fail could not start a process: {_describe(error)}")
        return len(tests)
    if pid == 0:
        try:
            os.close(read)
            os.close(go)
            _isolate(nonce, (relay, control))
        except BaseException:
            os._exit(1)
        _solution_process(solution, tests, start, relay, control)
    os.close(relay)
    os.close(control)
    lines = _Lines(read)
    try:
        try:
            loaded = lines.next(time.monotonic() + seconds)
        except TimeoutError:
            loaded = f"setup the code did not finish loading within {seconds:g}s"
        if loaded != "loaded":
            how = _end(pid, sweep)
            if loaded is None or not loaded.startswith("setup "):
                loaded = f"setup the code ended its process ({how}) while loading"
            if start == 0:
                _say(nonce, _clean(loaded))
            for index in range(start, len(tests)) if start else ():
                _say(nonce, f"{index} fail {_clean(loaded)}")
            return len(tests)
        for index in range(start, len(tests)):
            _sweep(sweep, pid)
            os.write(go, b"g")
            try:
                line = lines.next(time.monotonic() + seconds)
            except TimeoutError:
                _end(pid, sweep)
                _say(nonce, f"{index} fail timeout: the test ran past its {seconds:g}s")
                return index + 1
            if line is None:
                how = _end(pid, sweep)
                _say(nonce, f"{index} fail the tests' process ended ({how}) during the test")
                return index + 1
            said, _, verdict = line.partition(" ")
            verdict = _clean(verdict)
            if said != str(index) or not (verdict == "pass" or verdict.startswith("fail ")):
                verdict = "fail garbled report: " + _clean(line)[:100]
            _say(nonce, f"{index} {verdict}")
        _end(pid, sweep)
        return len(tests)
    finally:
        os.close(read)
        os.close(go)


def main() -> None:
    _undumpable()
    with open("rk_tests.json") as handle:
        spec = json.load(handle)
    with open("rk_solution.py") as handle:
        solution = handle.read()
    nonce = _read_nonce()
    sys.stdout.flush()
    sys.stderr.flush()
    _say(nonce, "start")
    index = 0
    while 0 <= index < len(spec["tests"]):
        index = _serve(nonce, spec, solution, index)
    if index >= 0:
        _say(nonce, "done")


if __name__ == "__main__":
    main()
