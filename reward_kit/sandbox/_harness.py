"""Runs inside the sandbox as ``main.py``: the tests against the solution, one verdict each.

Executed by the sandbox's interpreter (``python -E -s -B main.py``); it imports nothing from
reward-kit, only its siblings ``rk_wire.py`` and ``rk_verdict.py``, before any model code runs.
Files: ``rk_solution.py``, ``rk_tests.json`` (``{"tests": [sources], "prelude": source,
"entry_points": [names] | null, "sweep": bool, "seconds": float}``), ``rk_nonce`` (32 bytes the
host tags lines with) and ``rk_server.py``.

Lines on stdout, each ``<nonce> ...``: ``start`` once set up, before any model code runs (the
host treats a run without it as a sandbox failure, never as a score); ``error <why>`` when the
solution's process could not be started before any model code ran (a sandbox failure too);
``setup <why>`` when the solution failed to load; ``<i> pass|fail <why>|invalid <why>`` per
test; ``done``.

Three kinds of process; model code runs in one only::

    host ── stdout (nonce-tagged verdicts) ── harness (this: no model code, undumpable)
                                                │ fork + exec      │ fork, per test
                                   solution's process       verdict process (no model code,
                                   (loads the code once)    undumpable): runs the test
                                         │ fork, per test         │
                                   test server ◄── call channel ──┘
                                   (answers calls: plain data only)

* This process reads the nonce and the tests, deletes their files, and only then starts the
  *solution's process*: a fresh interpreter (exec), which never held either. It loads the
  solution and, for each test, forks a *test server* that answers calls on that test's channel.
* For each test this process forks a *verdict process*: it runs the test's code, where the
  solution's names stand for calls answered with plain data (see ``_verdict.py``), and
  reports "pass" or "fail ..." on a pipe that no model process holds. Its verdict depends only
  on the test's code and the plain values the solution chose to answer.
* No model code can reach stdout, the verdict pipes or these processes: fds 0-2 of the
  solution's process are /dev/null and it inherits no other fd; this process and the verdict
  processes are undumpable (no ptrace, ``/proc/<pid>/fd``, ``/proc/<pid>/mem``); the sandbox's
  seccomp filter refuses ptrace to all. Model code can stop or kill them (same uid): a test
  without a verdict fails.
* Imports here and in the verdict processes read only directories model code cannot write
  (not the work dir, ``/tmp``, ``/dev/shm``), so a planted ``random.py`` is never imported.
* Every deadline is kept here: ``seconds`` to load the solution, then ``seconds`` per test. A
  test past its deadline fails; the solution's process is killed (with everything else of
  the run) and a fresh one loads the solution for the next test.
"""

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # inside the sandbox they are files beside this one
    from . import _solution as rk_server
    from . import _verdict as rk_verdict
    from . import _wire as wire
else:
    import rk_server
    import rk_verdict
    import rk_wire as wire

_PR_SET_DUMPABLE = 4
_MAX_DETAIL = 300
_CONTROL_FD = 3
_UNTRUSTED_DIRS = ("/tmp", "/dev/shm", "/var/tmp")
_KINDS = {"function": 1, "class": 1, "object": 1, "module": 2, "value": 2}


def _set_dumpable(value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl(PR_SET_DUMPABLE, {value}) failed")


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


def _trusted_imports_only() -> list[str]:
    """From now on, import only from directories model code cannot write; the path before."""
    here = os.path.realpath(os.getcwd())

    def trusted(path: str) -> bool:
        real = os.path.realpath(path)
        if any(real == d or real.startswith(d + "/") for d in (here, *_UNTRUSTED_DIRS)):
            return False
        return os.geteuid() == 0 or not os.access(real, os.W_OK)

    before = list(sys.path)
    sys.path[:] = [path for path in sys.path if path and trusted(path)]
    sys.path_importer_cache.clear()
    return before


def _say(nonce: bytearray, text: str) -> None:
    os.writev(1, [nonce, b" " + text.encode(errors="replace") + b"\n"])


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _clean(text: str) -> str:
    return " ".join(text.split())[:_MAX_DETAIL]


def _signal_name(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    hint = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (CPU time limit, or killed)"}
    return name + hint.get(name, "")


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return "killed by " + _signal_name(os.WTERMSIG(status))
    return f"exit code {os.WEXITSTATUS(status)}"


def _only_fds(keep: dict[int, int]) -> None:
    """In a child, before it runs anything else: stdio on /dev/null, then exactly ``keep``
    (fd: the number it gets), every other fd closed."""
    null = os.open(os.devnull, os.O_RDWR)
    moved = {os.dup(fd): target for fd, target in keep.items()}
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    for fd, target in moved.items():
        os.dup2(fd, target)  # inheritable: it survives exec
    low = 3
    for fd in sorted(keep.values()):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


# --- leftovers: the run's other processes --------------------------------------------------


def _in_own_pid_namespace(enabled: bool) -> bool:
    """Only in the sandbox's own PID namespace (this process pid 2 under the sandbox's init)
    does ending "every other process" mean this run's processes alone."""
    return enabled and os.getpid() == 2 and os.getppid() == 1


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


def _sweep(enabled: bool, spare: int) -> None:
    """End whatever a test (or the solution's top level) left running, so it cannot use the
    next tests' CPU, memory or process slots; ``spare`` is the solution's process (0: none)."""
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


def _waiter(fd: int, deadline: float) -> Any:
    def wait() -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError

    return wait


# --- the solution's process -----------------------------------------------------------------


class _Failed(Exception):
    """The solution's process could not be started or loaded; ``infrastructure``: before any
    model code ran (a sandbox failure, never a score)."""

    def __init__(self, why: str, *, infrastructure: bool = False) -> None:
        super().__init__(why)
        self.infrastructure = infrastructure


class _Solution:
    """A solution's process: its pid, its control socket, its top-level names.

    The first is a fork of this process, taken before it read the tests, which zeroes its copy
    of the nonce (``forked``: the nonce and the import path model code gets); an exec costs
    an interpreter's start-up. Later ones (after a test's deadline) are a fresh interpreter.
    """

    def __init__(self, sweep: bool, forked: tuple[bytearray, list[str]] | None = None) -> None:
        self.sweep, self.ended = sweep, ""
        self.names: dict[str, list[Any]] = {}
        control, theirs = socket.socketpair()
        self.control = control
        try:
            self.pid = os.fork()
        except OSError as error:
            control.close()
            theirs.close()
            raise _Failed(
                "could not start the solution's process: " + _describe(error), infrastructure=True
            ) from None
        if self.pid == 0:
            try:
                _only_fds({theirs.fileno(): _CONTROL_FD})
                if forked is None:
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    os.execv(sys.executable, [sys.executable, "-E", "-s", "-B", "rk_server.py"])
                nonce, path = forked
                for i in range(len(nonce)):
                    nonce[i] = 0
                sys.path[:] = path
                signal.signal(signal.SIGINT, signal.default_int_handler)
                _set_dumpable(1)  # as any process model code starts: readable by the watchdog
                rk_server.main()
            finally:
                os._exit(127)
        theirs.close()

    def load(self, seconds: float) -> None:
        """Wait for the solution to load (within ``seconds``); raises :class:`_Failed`."""
        try:
            self._load(time.monotonic() + seconds, seconds)
        except BaseException:
            self.end()
            raise
        self.control.setblocking(False)  # a process that stops reading cannot block us

    def _message(self, deadline: float) -> Any:
        frame = wire.read_frame(self.control.fileno(), _waiter(self.control.fileno(), deadline))
        return None if frame is None else wire.loads(frame)

    def _load(self, deadline: float, seconds: float) -> None:
        # Before "ready" no model code has run in this process: a failure is the sandbox's.
        try:
            ready = self._message(deadline)
        except (TimeoutError, wire.WireError, OSError) as error:
            ready = _describe(error)
        if ready != ["ready"]:
            why = f"{ready!s:.100}" if ready is not None else self.end()
            raise _Failed(f"the solution's process did not start ({why})", infrastructure=True)
        try:
            loaded = self._message(deadline)
        except TimeoutError:
            raise _Failed(f"the code did not finish loading within {seconds:g}s") from None
        except (wire.WireError, OSError):
            loaded = ["garbled"]
        if type(loaded) is list and loaded[:1] == ["setup"] and len(loaded) == 2:
            raise _Failed(_clean(str(loaded[1])))
        if type(loaded) is not list or loaded[:1] != ["loaded"]:
            how = self.end() if loaded is None else "garbled report"
            raise _Failed(f"the code ended its process ({how}) while loading")
        self.names = _parse_names(loaded[1:])

    def give(self, channel: socket.socket, *, last: bool) -> bool:
        """Hand one test's channel over; False if the process does not take it."""
        try:
            kind = b"l" if last else b"t"
            return socket.send_fds(self.control, [kind], [channel.fileno()]) == 1
        except OSError:
            return False

    def end(self) -> str:
        """Kill it (and, in the sandbox's PID namespace, everything else but us); how it
        ended."""
        if not self.ended:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _sweep(self.sweep, 0)
            self.control.close()
            self.ended = _how(os.waitpid(self.pid, 0)[1])
        return self.ended


def _parse_names(body: list[Any]) -> dict[str, list[Any]]:
    """The solution's names, checked strictly: this decodes what the model's process sent."""
    if len(body) != 1 or type(body[0]) is not list:
        raise _Failed("the code ended its process (garbled report) while loading")
    names: dict[str, list[Any]] = {}
    for entry in body[0]:
        if type(entry) is not list or len(entry) < 2 or type(entry[0]) is not str:
            continue
        name, kind, rest = entry[0], entry[1], entry[2:]
        if not name.isidentifier() or type(kind) is not str or _KINDS.get(kind) != len(entry) - 1:
            continue
        if kind == "value":
            try:
                names[name] = ["value", wire.from_tree(rest[0])]
            except wire.WireError:
                names[name] = ["object"]
        elif kind == "module":
            if type(rest[0]) is str:
                names[name] = ["module", rest[0]]
        else:
            names[name] = [kind]
    return names


# --- one test -------------------------------------------------------------------------------


def _verdict_process(
    spec: dict[str, Any], index: int, solution: _Solution, channel: socket.socket, report: int
) -> NoReturn:
    try:
        _only_fds({channel.fileno(): channel.fileno(), report: report})
        message = rk_verdict.run(
            channel.fileno(),
            spec["tests"][index],
            index,
            prelude=spec["prelude"],
            entry_points=spec["entry_points"],
            solution=solution.names,
        )
    except BaseException as error:
        message = "fail " + _describe(error)
    try:
        os.write(report, (_clean(message) + "\n").encode(errors="replace"))
    finally:
        os._exit(0)


def _run_test(spec: dict[str, Any], index: int, solution: _Solution) -> tuple[str, bool]:
    """One test's verdict, and whether the solution's process may serve the next test."""
    seconds = float(spec["seconds"])
    _sweep(spec["sweep"] is True, solution.pid)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        if not solution.give(theirs, last=index == len(spec["tests"]) - 1):
            return "fail the solution's process did not take the test", False
        theirs.close()
        read, report = os.pipe()
        try:
            pid = os.fork()
        except OSError as error:
            os.close(read)
            os.close(report)
            return "fail could not start a process for the test: " + _describe(error), False
        if pid == 0:
            os.close(read)
            _verdict_process(spec, index, solution, ours, report)
    os.close(report)
    line, timed_out = None, False
    try:
        line = _line(read, time.monotonic() + seconds)
    except TimeoutError:
        timed_out = True
    finally:
        os.close(read)
    # Its verdict is in (or it is late): a verdict process stopped by model code must not
    # stop us in waitpid.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return f"fail timeout: the test ran past its {seconds:g}s", False
    if line is None or not (line == "pass" or line.startswith(("fail ", "invalid "))):
        return f"fail the test's verdict process ended ({_how(status)}) before a verdict", False
    return line, True


def _line(fd: int, deadline: float) -> str | None:
    """The verdict process's one line; None if it ended without one."""
    wait, data = _waiter(fd, deadline), b""
    while b"\n" not in data and len(data) < 4 * _MAX_DETAIL:
        wait()
        chunk = os.read(fd, 4 * _MAX_DETAIL)
        if not chunk:
            break
        data += chunk
    if b"\n" not in data:
        return None
    return data.partition(b"\n")[0].decode(errors="replace")


# --- this process ---------------------------------------------------------------------------


def _run(nonce: bytearray, spec: dict[str, Any], first: _Solution) -> None:
    seconds, sweep, tests = float(spec["seconds"]), spec["sweep"] is True, spec["tests"]
    first.sweep = sweep
    solution: _Solution | None = None
    fresh: _Solution | None = first
    for index in range(len(tests)):
        try:
            if solution is None:
                solution, fresh = fresh or _Solution(sweep), None
                solution.load(seconds)
        except _Failed as error:
            if error.infrastructure and index == 0:
                _say(nonce, "error " + _clean(str(error)))
                return
            if index == 0:
                _say(nonce, "setup " + _clean(str(error)))
            for rest in range(index, len(tests)) if index else ():
                _say(nonce, f"{rest} fail {_clean(str(error))}")
            break
        verdict, keep = _run_test(spec, index, solution)
        if not keep:
            solution.end()
            solution = None
        _say(nonce, f"{index} {_clean(verdict)}")
    if solution is not None:
        solution.end()
    _say(nonce, "done")


def main() -> None:
    _set_dumpable(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # model code shares our uid: no KeyboardInterrupt
    # The tests hold the expected answers: their file goes before any model code runs, and
    # they are read only after the first solution's process is forked.
    tests = os.open("rk_tests.json", os.O_RDONLY)
    os.unlink("rk_tests.json")
    nonce = _read_nonce()
    path = _trusted_imports_only()
    sys.stdout.flush()
    sys.stderr.flush()
    _say(nonce, "start")
    try:
        first = _Solution(sweep=False, forked=(nonce, path))
    except _Failed as error:
        _say(nonce, "error " + _clean(str(error)))
        return
    with open(tests, closefd=True) as handle:
        spec = json.load(handle)
    _run(nonce, spec, first)


if __name__ == "__main__":
    main()
