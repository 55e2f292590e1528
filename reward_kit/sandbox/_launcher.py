"""Runs inside the sandbox: apply the resource limits, then exec the program.

Executed with ``python -I -S -c`` (this file's text), so it imports nothing from reward-kit.
argv: ``<limits as JSON> -- <program> <args...>``. Limits are set here, inside the sandbox's
own user namespace, rather than before bubblewrap starts: RLIMIT_NPROC then counts only this
sandbox's processes, so one fork bomb cannot starve the sandboxes running next to it.
"""

import json
import os
import resource
import sys

LAUNCH_FAILED = 125


def main() -> None:
    try:
        limits = json.loads(sys.argv[1])
        program = sys.argv[3:]
        for name, (soft, hard) in limits.items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        os.execv(program[0], program)
    except Exception as error:  # the marker lets the host tell a launch failure from the program
        sys.stderr.write(f"rk-sandbox-launcher: {type(error).__name__}: {error}\n")
        sys.stderr.flush()
        os._exit(LAUNCH_FAILED)


if __name__ == "__main__":
    main()
