"""Runs inside the sandbox as ``rk_server.py``: the solution's process, where model code runs.

Started by the harness with ``python -E -s -B rk_server.py`` (a fresh interpreter: it never
held the nonce or the tests), fds 0-2 on /dev/null and one socket on fd 3, the control channel
to the harness. It imports nothing from reward-kit. It says ``["ready"]``, then loads the
solution (``rk_solution.py``) once and says ``["loaded", names]`` (each top-level name and
what it is, see :func:`_names`) or ``["setup", why]``. Then, for each test, the harness sends
one byte with a socket attached (SCM_RIGHTS): the call channel of that test. This process
forks a *test server* that answers calls on it from the loaded namespace (each test starts
from the same loaded state) until the channel closes; for the last test (``l``) it answers
them itself.

Requests and answers are frames of :mod:`rk_wire` (``_wire.py``): ``["call", seq, ref, args,
kwargs]`` and ``["getattr", seq, ref, name]``, where ``ref`` is a top-level name or the number
of an object this server handed out; answers are ``[seq, "value", tree]``, ``[seq, "object",
n, type]`` (only for a call to a class), ``[seq, "method", n]`` (an attribute that is
callable), ``[seq, "raise", type, message]`` or ``[seq, "notplain", what]``.

Nothing here is trusted: the model's code can replace any of it. The verdict process decodes
every answer strictly and decides alone.
"""

import builtins
import os
import socket
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import _wire as wire
else:
    import rk_wire as wire

CONTROL_FD = 3
_MAX_VALUE = 64 << 10  # a top-level value larger than this is not sent with the names
_MAX_NAMES = 4 << 20
_MAX_TEXT = 300


def _describe(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"[:_MAX_TEXT]
    except BaseException:  # a str() that raises or recurses: the type is enough
        return type(error).__name__


def _names(namespace: dict[str, Any]) -> list[list[Any]]:
    """``[name, "function"|"class"|"object"]``, ``[name, "module", module name]`` or
    ``[name, "value", tree]`` for each top-level name but dunders."""
    names, size = [], 0
    for name, value in list(namespace.items()):
        if name.startswith("__") and name.endswith("__"):
            continue
        if isinstance(value, type):
            names.append([name, "class"])
        elif isinstance(value, types.ModuleType):
            names.append([name, "module", value.__name__])
        elif callable(value):
            names.append([name, "function"])
        else:
            try:
                tree = wire.to_tree(value)
                length = len(wire.dumps(tree))
            except (wire.WireError, RecursionError):
                length = _MAX_VALUE + 1
            if length <= _MAX_VALUE and size + length <= _MAX_NAMES:
                names.append([name, "value", tree])
                size += length
            else:
                names.append([name, "object"])
    return names


class _Server:
    """One test's calls, answered from this process's copy of the loaded namespace."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.objects: dict[int, Any] = {}

    def resolve(self, ref: Any) -> Any:
        if type(ref) is str and ref in self.namespace:
            return self.namespace[ref]
        if type(ref) is int and ref in self.objects:
            return self.objects[ref]
        raise NameError(f"the solution has no {ref!r}")

    def keep(self, value: Any) -> int:
        number = len(self.objects) + 1
        self.objects[number] = value
        return number

    def answer(self, request: Any) -> list[Any]:
        seq = request[1]
        if request[0] == "call" and len(request) == 5:
            target = self.resolve(request[2])
            args = wire.from_tree(request[3], self.resolve)
            kwargs = wire.from_tree(request[4], self.resolve)
            result = target(*args, **kwargs)
            try:
                return [seq, "value", wire.to_tree(result)]
            except wire.WireError:
                if isinstance(target, type):
                    return [seq, "object", self.keep(result), type(result).__name__]
                return [seq, "notplain", f"a {type(result).__name__}"]
        if request[0] == "getattr" and len(request) == 4 and type(request[3]) is str:
            value = getattr(self.resolve(request[2]), request[3])
            try:
                return [seq, "value", wire.to_tree(value)]
            except wire.WireError:
                if callable(value):
                    return [seq, "method", self.keep(value)]
                return [seq, "notplain", f"a {type(value).__name__}"]
        raise ValueError(f"unknown request {request[0]!r}")

    def serve(self, fd: int) -> None:
        while (frame := wire.read_frame(fd)) is not None:
            request = wire.loads(frame)
            seq = request[1] if type(request) is list and len(request) > 1 else None
            try:
                reply = self.answer(request)
            except BaseException as error:  # SystemExit too: the verdict process decides
                reply = [seq, "raise", type(error).__name__, _describe(error)]
            try:
                data = wire.dumps(reply)
            except (wire.WireError, ValueError, RecursionError) as error:
                data = wire.dumps([seq, "notplain", _describe(error)])
            wire.write_bytes(fd, data)


def main() -> None:
    control = socket.socket(fileno=CONTROL_FD)
    wire.write_frame(CONTROL_FD, ["ready"])
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        with open("rk_solution.py") as handle:
            exec(compile(handle.read(), "solution.py", "exec"), namespace)
    except BaseException as error:  # SystemExit too: leaving early is no pass
        wire.write_frame(CONTROL_FD, ["setup", _describe(error)])
        os._exit(0)
    wire.write_frame(CONTROL_FD, ["loaded", _names(namespace)])
    while True:
        data, fds, _, _ = socket.recv_fds(control, 1, 4)
        if not data:  # the harness is done with us
            os._exit(0)
        for extra in fds[1:]:
            os.close(extra)
        if not fds:
            continue
        if data == b"l":  # the last test: no later test needs the loaded state kept
            control.close()
            _Server(namespace).serve(fds[0])
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            try:
                control.close()
                _Server(namespace).serve(fds[0])
            finally:
                os._exit(0)
        os.close(fds[0])
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
