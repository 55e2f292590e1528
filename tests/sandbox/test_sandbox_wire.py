"""The call channel's codec (reward_kit/sandbox/_wire.py), on the host: what the verdict
process decodes is exact builtins or an error, never an object the model's code wrote."""

from __future__ import annotations

import math
import os
import struct
from typing import Any

import pytest

from reward_kit.sandbox._wire import (
    MAX_DEPTH,
    MAX_FRAME,
    WireError,
    dumps,
    from_tree,
    loads,
    read_frame,
    to_tree,
    write_frame,
)


def round_trip(value: Any) -> Any:
    return from_tree(loads(dumps(to_tree(value))[4:]))


def exact_types(value: Any) -> set[type]:
    kinds = {type(value)}
    if type(value) in (list, tuple, set):
        for item in value:
            kinds |= exact_types(item)
    if type(value) is dict:
        for key, item in value.items():
            kinds |= exact_types(key) | exact_types(item)
    return kinds


@pytest.mark.parametrize(
    "value",
    [
        None, True, False, 0, 1, -7, 3 ** 5000, -(2 ** 40000), 0.1, -0.0, math.inf, "", "é\ud800",
        [1, [2, (3, 4)], {5, 6}], (), {"a": 1, 2: [3], (4, 5): {6}, None: True, 1.5: "x"},
        dict.fromkeys([(1, 2), (3,)]),
    ],
    ids=lambda value: type(value).__name__,
)  # fmt: skip
def test_plain_values_round_trip_as_exact_builtins(value: Any) -> None:
    back = round_trip(value)
    assert back == value
    assert type(back) is type(value)
    assert exact_types(back) <= {type(None), bool, int, float, str, list, tuple, set, dict}
    if type(value) is bool:
        assert back is value  # True stays a bool, never the int 1


def test_nan_round_trips() -> None:
    assert math.isnan(round_trip(math.nan))


class Int(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize(
    "value",
    [Int(3), type("S", (str,), {})("x"), type("L", (list,), {})(), type("D", (dict,), {})(),
     type("F", (float,), {})(1.0), type("T", (tuple,), {})(), object(), [1, [Int(2)]],
     {"k": object()}, frozenset({1}), b"bytes", 1j],
)  # fmt: skip
def test_anything_but_exact_builtins_is_refused(value: Any) -> None:
    with pytest.raises(WireError, match="not plain data"):
        to_tree(value)


def test_nesting_and_cycles_are_bounded() -> None:
    deep: list[Any] = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(WireError, match="nested deeper"):
        to_tree(deep)
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(WireError, match="nested deeper"):
        to_tree(cycle)
    with pytest.raises(WireError, match="nested deeper"):
        from_tree(loads(b'["l",' * (MAX_DEPTH + 1) + b'"x"' + b"]" * (MAX_DEPTH + 1)))
    with pytest.raises(WireError, match="not a message"):
        loads(b"[" * 200_000 + b"]" * 200_000)  # the JSON parser's own recursion


@pytest.mark.parametrize(
    "text",
    [b'{"a": 1}', b'["x", 1]', b'["d", 1]', b'["d", ["l"], 1]', b'["s", ["l"]]', b'["I", "zz"]',
     b'["r", 1]', b"[]", b"[1, 2]", b"not json", b"\xff"],
)  # fmt: skip
def test_malformed_messages_are_errors(text: bytes) -> None:
    with pytest.raises(WireError):
        from_tree(loads(text))


def test_references_resolve_only_where_the_reader_allows_them() -> None:
    objects = {7: "the object"}
    assert from_tree(["l", ["r", 7]], objects.__getitem__) == ["the object"]
    assert to_tree([object()], lambda value: 7) == ["l", ["r", 7]]


def test_frames_over_a_pipe() -> None:
    read, write = os.pipe()
    try:
        write_frame(write, ["l", 1, "two"])
        assert loads(read_frame(read) or b"") == ["l", 1, "two"]
        os.write(write, struct.pack(">I", MAX_FRAME + 1))
        with pytest.raises(WireError, match="over the"):
            read_frame(read)
        os.write(write, struct.pack(">I", 10) + b"abc")
        os.close(write)
        with pytest.raises(WireError, match="cut short"):
            read_frame(read)
        assert read_frame(read) is None  # end of file
    finally:
        os.close(read)
    with pytest.raises(WireError, match="over the"):
        dumps("x" * MAX_FRAME)
