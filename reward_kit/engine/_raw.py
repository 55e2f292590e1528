"""Items validated where they are evaluated.

``/batch_evaluate`` hands the engine each item as the request holds it (a :class:`RawItem`).
For a function in the process pool, a chunk of them crosses to a worker as the JSON it came
in (``orjson`` writes 1,000 items in a tenth of the time pickle takes), and the worker
validates each item itself, in parallel with the other workers, instead of the server's event
loop validating every item before the first one can start. A bad item gets exactly the
``invalid`` outcome the server would have given it (the same :func:`parse_item` and
:func:`check_kwargs`, naming ``items.N``); everywhere else the engine validates raw items
before running them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Annotated, Any, NamedTuple, cast

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import Required, TypedDict

from .._calling import messages_in_bulk
from .._errors import RequestRejected
from .._function import RewardFunction
from ._encoded import ItemFields
from ._items import check_kwargs, parse_item, reserved_kwargs
from ._outcome import Item, Outcome, failure

__all__ = ["RawItem", "decode_chunk", "encode_chunk", "validated"]


class RawItem(NamedTuple):
    """An item not validated yet: the JSON object as received, and where the request has it
    (``items.3``), for the error's field path."""

    data: dict[str, Any]
    where: str


def validated(item: Item | RawItem, fn: RewardFunction[Any]) -> Item | Outcome:
    """``item`` ready to evaluate with ``fn``, or its ``invalid`` outcome."""
    if not isinstance(item, RawItem):
        return item
    return _validate(item.data, item.where, fn)


def encode_chunk(items: Sequence[Item | RawItem]) -> bytes | None:
    """The chunk as JSON for a worker to validate, or None when it is not all raw items or
    cannot be written as JSON (an integer past 64 bits): validated here instead."""
    raw = [item for item in items if isinstance(item, RawItem)]
    if len(raw) != len(items):
        return None
    try:
        return orjson.dumps([[item.data, item.where] for item in raw])
    except orjson.JSONEncodeError:
        return None


# The common item, exactly as _items._plain_item takes it: messages of plain strings (or null
# where allowed), a ground truth that is a JSON scalar, and nothing else.
@with_config(ConfigDict(extra="forbid"))
class _PlainMessage(TypedDict, total=False):
    role: Required[str]
    content: str | None
    name: str | None
    tool_call_id: str | None


@with_config(ConfigDict(extra="forbid"))
class _PlainItem(TypedDict, total=False):
    messages: Required[Annotated[list[_PlainMessage], Field(min_length=1)]]
    ground_truth: str | int | float | bool | None


_PLAIN_CHUNK = TypeAdapter(list[tuple[_PlainItem, str]])


def decode_chunk(payload: bytes, fn: RewardFunction[Any]) -> list[ItemFields | Outcome]:
    """In the worker: each item of an :func:`encode_chunk` payload, as the plain tuple
    evaluation takes, or its ``invalid`` outcome.

    The valid items' messages are made ``Message`` objects here, for the whole chunk in one
    validation: the reward gets the objects it would otherwise build from the dicts itself,
    item by item, for twice the time. When any item's messages would not validate, they all
    stay dicts, and that item fails in its own call with its own error."""
    plain = _decode_plain(payload) if fn.mode == "pointwise" else None
    if plain is not None:
        return plain
    decoded: list[ItemFields | Outcome] = []
    valid: list[int] = []
    for data, where in orjson.loads(payload):
        checked = _validate(data, where, fn)
        if type(checked) is Outcome:
            decoded.append(checked)
        else:
            valid.append(len(decoded))
            decoded.append(tuple(checked))
    rows = cast("list[ItemFields]", [decoded[i] for i in valid])
    built = messages_in_bulk([row[0] for row in rows]) if fn.mode == "pointwise" else None
    if built is not None:
        for index, row, messages in zip(valid, rows, built, strict=True):
            decoded[index] = (messages, row[1], row[2])
    return decoded


def _decode_plain(payload: bytes) -> list[ItemFields | Outcome] | None:
    """A chunk of common items only, validated from its bytes in one call and its messages
    built in another (3.3 us an item, where parsing, checking each item in Python and building
    its messages take 4); None for any other chunk, which :func:`decode_chunk` then checks
    item by item, for each one's exact outcome. Such an item has no keyword arguments, so none
    can be reserved."""
    try:
        rows = _PLAIN_CHUNK.validate_json(payload)
    except ValidationError:
        return None
    built = messages_in_bulk([item["messages"] for item, _ in rows])
    if built is None:
        return None
    return [
        (messages, item.get("ground_truth"), {})
        for (item, _), messages in zip(rows, built, strict=True)
    ]


def _validate(data: Any, where: str, fn: RewardFunction[Any]) -> Item | Outcome:
    try:
        item, _ = parse_item(data, where)
        check_kwargs(item, _reserved(fn), fn.name, where)
    except RequestRejected as error:
        return failure("invalid", error.message, code=error.code)
    return item


@functools.lru_cache(maxsize=256)
def _reserved(fn: RewardFunction[Any]) -> frozenset[str]:
    # reserved_kwargs reads the signature: once per function, not once per item.
    return reserved_kwargs(fn)
