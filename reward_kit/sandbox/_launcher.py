"""Runs inside the sandbox: apply the resource limits, then run the program.

Executed with ``python -I -S -c`` (this file's text), so it imports nothing from reward-kit.
argv: ``<limits as JSON> <mode> -- <program> <args...>``. Limits are set here, inside the
sandbox's own user namespace, rather than before bubblewrap starts: RLIMIT_NPROC then counts
only this sandbox's processes, so one fork bomb cannot starve the sandboxes running next to it.

Mode ``exec`` (the weak sandbox) replaces this process with the program. Mode ``init`` (under
bubblewrap's ``--as-pid-1``) makes this process the sandbox's pid 1 instead of bubblewrap's
own init, which model code could ptrace: it turns itself undumpable (no ptrace, no
``/proc/1/mem`` or ``/proc/1/fd`` for anyone in the sandbox), ignores the one signal Python
would act on (SIGINT; the kernel drops every other signal sent to a namespace's init from
inside), runs the program as pid 2, reaps orphans, and exits with the program's status
(128 + the signal's number if a signal ended it), which ends every process left in the sandbox.
"""

import ctypes
import json
import os
import resource
import signal
import sys

LAUNCH_FAILED = 125
_PR_SET_DUMPABLE = 4


def _fail(error: BaseException) -> None:
    # The marker lets the host tell a launch failure from the program's own failure.
    sys.stderr.write(f"rk-sandbox-launcher: {type(error).__name__}: {error}\n")
    sys.stderr.flush()
    os._exit(LAUNCH_FAILED)


def _undumpable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def _init(program: list[str]) -> None:
    """Run ``program`` as a child and outlive it only to reap and to pass on its status."""
    _undumpable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # an ignored signal survives exec
            os.execv(program[0], program)
        except BaseException as error:
            _fail(error)
    while True:
        try:
            ended, status = os.wait()
        except ChildProcessError:  # cannot happen while the program runs: it is our child
            os._exit(LAUNCH_FAILED)
        if ended == pid:
            if os.WIFSIGNALED(status):
                os._exit(128 + os.WTERMSIG(status))
            os._exit(os.WEXITSTATUS(status))


def main() -> None:
    try:
        limits = json.loads(sys.argv[1])
        mode, program = sys.argv[2], sys.argv[4:]
        for name, (soft, hard) in limits.items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        if mode == "init":
            _init(program)
        os.execv(program[0], program)
    except Exception as error:
        _fail(error)


if __name__ == "__main__":
    main()
