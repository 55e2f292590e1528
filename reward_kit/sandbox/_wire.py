"""The call channel's wire format: length-prefixed JSON frames carrying plain data only.

Copied into the sandbox as ``rk_wire.py`` (it imports nothing from reward-kit) and used on both
sides of a call into the solution: the verdict process encodes the arguments and decodes the
answer, the solution's process does the opposite. Only the decoding side matters for trust:
:func:`from_tree` builds nothing but exact builtins (``int``, ``float``, ``str``, ``bool``,
``None``, ``list``, ``tuple``, ``dict``, ``set``), so whatever the model's process sends, the
verdict process holds no object whose methods the model wrote. Never pickle.

A value's tree is JSON: ``null``/``true``/``false``, numbers (an integer too long for JSON as
``["I", hex]``), strings, and containers as a tagged array: ``["l", ...]`` list, ``["t", ...]``
tuple, ``["s", ...]`` set, ``["d", k1, v1, k2, v2, ...]`` dict, ``["r", ref]`` a reference to an
object of the solution (only where the reader accepts references). JSON objects are refused.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_FRAME",
    "WireError",
    "dumps",
    "from_tree",
    "loads",
    "read_frame",
    "to_tree",
    "write_bytes",
    "write_frame",
]

MAX_FRAME = 16 << 20  # bytes in one message
MAX_DEPTH = 100  # nesting of containers
_BIG_INT_BITS = 10_000  # past this, an int travels as hex (decimal parsing is quadratic)
_HEADER = struct.Struct(">I")
_TAGS = {"l": list, "t": tuple, "s": set}
# Taken at import, before a solution runs: one that replaces os.write still gets answers out.
_write, _read = os.write, os.read


class WireError(Exception):
    """A message or value that is not well-formed plain data."""


def to_tree(value: Any, refer: Callable[[Any], Any] | None = None, depth: int = 0) -> Any:
    """The JSON tree of ``value``; exact builtin types only (a subclass of ``int`` is not
    plain data). ``refer`` may turn other objects into a reference (None: refuse them)."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is float:
        return value
    if kind is int:
        return value if value.bit_length() < _BIG_INT_BITS else ["I", format(value, "x")]
    if depth >= MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    if kind is list or kind is tuple or kind is set:
        tag = "l" if kind is list else "t" if kind is tuple else "s"
        return [tag, *(to_tree(item, refer, depth + 1) for item in value)]
    if kind is dict:
        tree: list[Any] = ["d"]
        for key, item in value.items():
            tree += [to_tree(key, refer, depth + 1), to_tree(item, refer, depth + 1)]
        return tree
    ref = refer(value) if refer is not None else None
    if ref is None:
        raise WireError(f"{kind.__name__} is not plain data")
    return ["r", ref]


def from_tree(tree: Any, resolve: Callable[[Any], Any] | None = None, depth: int = 0) -> Any:
    """The value of a tree from :func:`loads`; ``resolve`` turns a reference into its object
    (None: a reference is an error)."""
    kind = type(tree)
    if tree is None or kind is bool or kind is str or kind is int or kind is float:
        return tree
    if kind is not list or not tree or type(tree[0]) is not str:
        raise WireError(f"not a value: {kind.__name__}")
    if depth >= MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    tag, items = tree[0], tree[1:]
    try:
        if tag in _TAGS:
            return _TAGS[tag](from_tree(item, resolve, depth + 1) for item in items)
        if tag == "d" and len(items) % 2 == 0:
            values = [from_tree(item, resolve, depth + 1) for item in items]
            return dict(zip(values[::2], values[1::2], strict=True))
        if tag == "I" and len(items) == 1 and type(items[0]) is str:
            return int(items[0], 16)
    except (TypeError, ValueError) as error:  # an unhashable key or set item, a bad hex
        raise WireError(f"bad {tag!r} value: {error}") from None
    if tag == "r" and len(items) == 1 and resolve is not None:
        return resolve(items[0])
    raise WireError(f"not a value: tag {tag!r} with {len(items)} item(s)")


def _no_objects(pairs: list[tuple[str, Any]]) -> Any:
    raise WireError("JSON objects are not part of the format")


def dumps(message: Any) -> bytes:
    """One frame: a 4-byte big-endian length, then the message as ASCII JSON."""
    data = json.dumps(message, ensure_ascii=True, allow_nan=True, separators=(",", ":"))
    if len(data) > MAX_FRAME:
        raise WireError(f"a message of {len(data)} bytes is over the {MAX_FRAME}-byte limit")
    return _HEADER.pack(len(data)) + data.encode("ascii")


def loads(data: bytes) -> Any:
    """A frame's message, parsed strictly: JSON arrays, strings, numbers, literals."""
    try:
        return json.loads(data, object_pairs_hook=_no_objects)
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        raise WireError(f"not a message: {type(error).__name__}") from None


def write_bytes(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view) :]


def write_frame(fd: int, message: Any) -> None:
    write_bytes(fd, dumps(message))


def _read_exactly(fd: int, size: int, wait: Callable[[], None] | None) -> bytes | None:
    chunks, left = [], size
    while left:
        if wait is not None:
            wait()
        chunk = _read(fd, min(left, 1 << 20))
        if not chunk:
            if left == size:
                return None
            raise WireError("the message was cut short")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, wait: Callable[[], None] | None = None) -> bytes | None:
    """The next frame's bytes; None at end of file. ``wait`` runs before each read (to keep a
    deadline: it raises ``TimeoutError``)."""
    header = _read_exactly(fd, _HEADER.size, wait)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise WireError(f"a message of {size} bytes is over the {MAX_FRAME}-byte limit")
    body = _read_exactly(fd, size, wait)
    if body is None:
        raise WireError("the message was cut short")
    return body
