"""Runs inside the sandbox as ``rk_verdict.py``, in a verdict process: one test's code, with
the solution's names standing for calls into the solution's process.

A verdict process is forked by the harness, which never ran model code, for one test. It runs
the test's trusted code (and, for HumanEval, the problem's prompt first: its helpers and
imports); each name of the solution the test uses is a :class:`Remote` whose calls and
attribute reads travel to the solution's process and come back as plain data, decoded
strictly by :mod:`rk_wire`. So every value the test compares is an exact builtin that the
model's code could only choose, never program: no ``__eq__`` of the model's runs here.

* A function's or method's result must be plain data; anything else (an object, a subclass of
  ``int``, ``str``, ``list``...) fails the test. Calling a class of the solution gives an
  opaque object: equal only to itself, no truth value, its attributes and methods again
  answered with plain data.
* A call the solution cannot answer with plain data (its process ended, it raised
  ``SystemExit``, it sent something malformed) fails the test even if the test catches the
  error: the failure is recorded before it is raised.
* An exception of a builtin type raised by the solution is raised here with its message (a test
  may expect it); another type becomes :class:`SolutionError`.
* Arguments are copies: changes the solution makes to them are not seen here.
"""

import builtins
import contextlib
import importlib
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import _wire as wire
else:
    import rk_wire as wire

_EXITS = ("SystemExit", "KeyboardInterrupt", "GeneratorExit")
_EXCEPTIONS = {
    name: value
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, Exception)
}


class SolutionFailed(BaseException):
    """A call the solution did not answer with plain data: the test has failed."""


class SolutionError(Exception):
    """An exception the solution raised, of a type that is not a Python builtin."""


class _Made:
    """An answer that is no value: an object or method the solution's process keeps."""

    def __init__(self, kind: str, number: int, label: str) -> None:
        self.kind, self.number, self.label = kind, number, label


class Channel:
    """The request/answer channel to the solution's process for one test."""

    def __init__(self, fd: int) -> None:
        self.fd, self.seq = fd, 0
        self.failure: str | None = None

    def failed(self, why: str) -> SolutionFailed:
        """Record the test's failure (the first one holds) and the exception to raise."""
        if self.failure is None:
            self.failure = why
        return SolutionFailed(self.failure)

    def ask(self, request: list[Any], made: str | None) -> Any:
        """Send ``request``; its answer's value, a :class:`_Made` of kind ``made``, or the
        solution's exception raised here."""
        if self.failure is not None:
            raise SolutionFailed(self.failure)
        self.seq += 1
        try:
            wire.write_frame(self.fd, [request[0], self.seq, *request[1:]])
            frame = wire.read_frame(self.fd)
            reply = wire.loads(frame) if frame is not None else None
        except OSError:
            reply = None  # the process is gone (EPIPE)
        except wire.WireError as error:
            raise self.failed(f"garbled answer from the solution: {error}") from None
        if reply is None:
            raise self.failed("the solution's process ended during a call")
        return self._decode(reply, made)

    def _decode(self, reply: Any, made: str | None) -> Any:
        if type(reply) is not list or len(reply) < 2 or type(reply[0]) is not int:
            raise self.failed("garbled answer from the solution")
        if reply[0] != self.seq:
            raise self.failed("the solution answered another question")
        kind, rest = reply[1], reply[2:]
        if kind == "value" and len(rest) == 1:
            try:
                return wire.from_tree(rest[0])
            except wire.WireError as error:
                raise self.failed(f"the solution's answer is not plain data: {error}") from None
        if kind == "raise" and len(rest) == 2 and all(type(text) is str for text in rest):
            raise self._exception(*rest)
        if kind == "notplain" and len(rest) == 1 and type(rest[0]) is str:
            raise self.failed(
                f"the solution returned {rest[0][:100]}, not plain data "
                "(int, float, str, bool, None, list, tuple, dict, set)"
            )
        if kind == made and kind == "object" and len(rest) == 2 and type(rest[0]) is int:
            return _Made(kind, rest[0], f"{str(rest[1])[:60]} object")
        if kind == made and kind == "method" and len(rest) == 1 and type(rest[0]) is int:
            return _Made(kind, rest[0], "method")
        raise self.failed(f"unexpected answer from the solution: {str(kind)[:40]}")

    def _exception(self, name: str, message: str) -> BaseException:
        if name in _EXITS:
            raise self.failed(f"the solution raised {name}")
        kind = _EXCEPTIONS.get(name)
        text = message.partition(": ")[2] if message.startswith(name + ": ") else message
        if kind is not None:
            try:
                return kind(text)
            except Exception:  # a builtin exception with other arguments (UnicodeError...)
                pass
        return SolutionError(message)

    def call(self, target: "Remote", args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            trees = [wire.to_tree(list(args), _ref), wire.to_tree(kwargs, _ref)]
        except wire.WireError as error:
            raise TypeError(
                f"cannot pass that to the solution: {error} (only plain data and the "
                "solution's own objects cross)"
            ) from None
        made = "object" if target._rk_kind == "class" else None
        answer = self.ask(["call", target._rk_ref, *trees], made)
        if type(answer) is _Made:
            return Remote(self, answer.number, "object", answer.label)
        return answer

    def getattr(self, target: "Remote", name: str) -> Any:
        answer = self.ask(["getattr", target._rk_ref, name], "method")
        if type(answer) is _Made:
            return Remote(self, answer.number, "method", f"{target._rk_label}.{name}")
        return answer


def _ref(value: Any) -> Any:
    return value._rk_ref if type(value) is Remote else None


class Remote:
    """A function, class, method or object of the solution: calls and attribute reads are
    answered by the solution's process; comparisons are by identity, here."""

    __slots__ = ("_rk_channel", "_rk_kind", "_rk_label", "_rk_ref")

    def __init__(self, channel: Channel, ref: Any, kind: str, label: str) -> None:
        for name, value in (("channel", channel), ("ref", ref), ("kind", kind), ("label", label)):
            object.__setattr__(self, "_rk_" + name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._rk_channel.call(self, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_rk_")):  # copy, pickle, inspect...: nothing to forward
            raise AttributeError(name)
        return self._rk_channel.getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot set {name!r} on {self._rk_label} of the solution")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        if self._rk_kind == "object":
            raise TypeError(f"{self._rk_label} of the solution has no truth value here")
        return True

    def __repr__(self) -> str:
        return f"<{self._rk_label} of the solution>"


def global_names(code: types.CodeType) -> set[str]:
    """Every name ``code`` (and the functions and classes in it) may look up."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


def _bind(namespace: dict[str, Any], channel: Channel, name: str, entry: list[Any]) -> None:
    kind = entry[0]
    if kind in ("function", "class", "object"):
        namespace[name] = Remote(channel, name, kind, f"{kind} {name}")
    elif kind == "value":
        namespace[name] = entry[1]
    elif kind == "module" and entry[1] == name:  # `import math`, never `import x as math`
        with contextlib.suppress(ImportError):
            namespace[name] = importlib.import_module(name)


def run(
    fd: int,
    test: str,
    index: int,
    *,
    prelude: str,
    entry_points: list[str] | None,
    solution: dict[str, list[Any]],
) -> str:
    """Run one test: ``"pass"``, ``"fail <why>"``, or ``"invalid <why>"`` when the prelude
    (trusted code, before any call into the solution) failed.

    ``entry_points``: the only names of the solution the test sees, which must be functions
    (HumanEval's ``entry_point``); None: every name of the solution the test's code uses,
    except Python's builtins (a solution's ``abs`` or ``len`` never replaces them).
    """
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    if prelude:
        try:
            exec(compile(prelude, "prelude", "exec"), namespace)
        except BaseException as error:
            return f"invalid {type(error).__name__}: {error}"
    try:
        code = compile(test, f"test_{index}", "exec")
    except SyntaxError as error:
        return f"fail SyntaxError: {error}"
    channel = Channel(fd)
    if entry_points is not None:
        for name in entry_points:
            if solution.get(name, ["missing"])[0] not in ("function", "class"):
                return f"fail the solution defines no function {name}()"
            namespace[name] = Remote(channel, name, "function", f"function {name}")
    else:
        for name in sorted(global_names(code) & solution.keys()):
            if name not in namespace and not hasattr(builtins, name):
                _bind(namespace, channel, name, solution[name])
    try:
        exec(code, namespace)
    except BaseException as error:  # SystemExit too: leaving early is no pass
        if channel.failure is None:
            return f"fail {type(error).__name__}: {error}"
    if channel.failure is not None:
        return f"fail {channel.failure}"
    return "pass"
