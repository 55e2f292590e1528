"""Items from JSON: what a request (or an ``rk eval`` row) must hold to reach the engine.

Validation errors name the field (``items.3.messages.0.role: ...``) and are raised as
:class:`InvalidRequest` (422) or :class:`MalformedJSON` (400) before any reward runs.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, Required, TypedDict

from .._calling import format_validation_error
from .._errors import InvalidRequest, MalformedJSON, PayloadTooLarge
from .._function import RewardFunction
from .._vocabulary import RESERVED_ITEM_KEYS
from ._outcome import Item

__all__ = [
    "MAX_JSON_DEPTH",
    "check_kwargs",
    "parse_batch",
    "parse_item",
    "parse_json",
    "reserved_kwargs",
]

# How deep arrays/objects may nest inside one item (a top-level field's value is level 1).
# Real payloads (chat messages, tool schemas) stay under ~20; nesting in the hundreds breaks
# pickling to the worker processes (RecursionError near 500) and is refused here, with the
# field, before it reaches the engine. orjson's own limit (1024) bounds the whole body.
MAX_JSON_DEPTH = 100


@with_config(ConfigDict(extra="allow"))
class _MessageIn(TypedDict, total=False):
    role: Required[str]
    content: str | list[dict[str, Any]] | None
    name: str | None
    tool_calls: list[dict[str, Any]] | None
    tool_call_id: str | None


class _ItemIn(TypedDict, total=False):
    messages: Required[Annotated[list[_MessageIn], Field(min_length=1)]]
    ground_truth: Any
    tools: list[Any] | None
    kwargs: dict[str, Any]
    function: str | None


class _BatchIn(TypedDict):
    items: list[Any]
    function: NotRequired[str | None]


# Validating into TypedDicts keeps plain dicts (cheap to pickle to workers); the pydantic
# BaseModel path costs ~5x more on a 1,000-item batch.
_ITEM = TypeAdapter(_ItemIn)
_BATCH = TypeAdapter(_BatchIn)


def parse_json(body: bytes) -> Any:
    if not body:
        raise MalformedJSON("the request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit exceeded"):
            raise MalformedJSON(
                f"the request body is nested too deep ({error}); arrays and objects may be "
                f"nested at most {MAX_JSON_DEPTH} levels inside an item"
            ) from None
        raise MalformedJSON(f"the request body is not valid JSON: {error}") from None


def parse_item(data: Any, where: str = "") -> tuple[Item, str | None]:
    """Validate one item; unknown top-level keys become kwargs. Returns (item, function)."""
    if not isinstance(data, dict):
        label = where or "body"
        raise InvalidRequest(f"{label}: expected a JSON object, got {_json_type(data)}")
    plain = _plain_item(data) if type(data) is dict else None
    if plain is not None:
        return plain
    known: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in data.items():  # one pass: this runs for every item of every batch
        (known if key in RESERVED_ITEM_KEYS else extras)[key] = value
        if type(value) is list or type(value) is dict:
            _check_depth(value, key, where)
    try:
        valid = _ITEM.validate_python(known)
    except ValidationError as error:
        raise InvalidRequest(format_validation_error(error, where)) from None
    kwargs: dict[str, Any] = dict(valid.get("kwargs") or {})
    if valid.get("tools") is not None:
        extras["tools"] = valid["tools"]
    if extras:
        clash = sorted(set(extras) & set(kwargs))
        if clash:
            prefix = f"{where}." if where else ""
            raise InvalidRequest(
                f"{prefix}kwargs: {', '.join(map(repr, clash))} given both at the top level and "
                "in 'kwargs'; give each once"
            )
        kwargs.update(extras)
    item = Item(list(valid["messages"]), valid.get("ground_truth"), kwargs)
    return item, valid.get("function")


# The fields of a message _plain_message accepts, in _MessageIn's order (the order validation
# gives the keys): plain strings, or null where the field allows it.
_PLAIN_MESSAGE_KEYS = ("role", "content", "name", "tool_call_id")
_PLAIN_MESSAGE_FIELDS = frozenset(_PLAIN_MESSAGE_KEYS)
_ABSENT = object()


def _plain_item(data: dict[str, Any]) -> tuple[Item, str | None] | None:
    """What the validation in :func:`parse_item` returns for an item of the common shape
    (messages of plain strings), or None: such an item is checked here in Python in under half
    the time. Anything else, and so every item the validation would refuse, gets None
    and goes through it, for its exact errors. Only exact JSON types pass (``type(x) is str``),
    which are what validation accepts for these fields without converting them.
    """
    messages = data.get("messages")
    if type(messages) is not list or not messages:
        return None
    copies = []
    for message in messages:
        # Inlined for the commonest message, {"role": str, "content": str}.
        if type(message) is dict and len(message) == 2:
            role, content = message.get("role"), message.get("content", _ABSENT)
            if type(role) is str and type(content) is str:
                copies.append({"role": role, "content": content})
                continue
        copy = _plain_message(message)
        if copy is None:
            return None
        copies.append(copy)
    ground_truth = function = tools = None
    kwargs: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in data.items():
        kind = type(value)
        if key == "messages":
            continue
        if (kind is list or kind is dict) and _too_deep(value, 1) is not None:
            return None
        if key == "ground_truth":
            ground_truth = value
        elif key == "kwargs":
            if kind is not dict or not all(type(name) is str for name in value):
                return None
            kwargs = dict(value)
        elif key == "tools":
            if value is not None and kind is not list:
                return None
            tools = value
        elif key == "function":
            if value is not None and kind is not str:
                return None
            function = value
        else:
            extras[key] = value
    if tools is not None:
        extras["tools"] = list(tools)
    if extras:
        if not kwargs.keys().isdisjoint(extras):
            return None
        kwargs.update(extras)
    return Item(copies, ground_truth, kwargs), function


def _plain_message(message: Any) -> dict[str, Any] | None:
    """A message of plain string fields, as validation copies it; None for any other."""
    if type(message) is not dict or type(message.get("role")) is not str:
        return None
    for key, value in message.items():
        if key not in _PLAIN_MESSAGE_FIELDS or not (value is None or type(value) is str):
            return None
    if len(message) == 2 and "content" in message:
        return {"role": message["role"], "content": message["content"]}
    return {key: message[key] for key in _PLAIN_MESSAGE_KEYS if key in message}


def parse_batch(data: Any, *, max_items: int) -> tuple[list[Any], str | None]:
    """Validate the envelope only; items are validated one by one so a bad one fails alone."""
    if not isinstance(data, dict):
        raise InvalidRequest(f"body: expected a JSON object, got {_json_type(data)}")
    try:
        valid = _BATCH.validate_python(data)
    except ValidationError as error:
        raise InvalidRequest(format_validation_error(error)) from None
    extra = sorted(set(data) - {"items", "function"})
    if extra:
        raise InvalidRequest(
            f"body: unexpected field(s) {', '.join(map(repr, extra))}; a batch is "
            "{'items': [...], 'function': name} and per-item arguments go inside each item"
        )
    items = valid["items"]
    if len(items) > max_items:
        raise PayloadTooLarge(
            f"the batch has {len(items)} items; this server accepts at most {max_items} "
            "(--max-batch-items); split it into several requests"
        )
    return items, valid.get("function")


def reserved_kwargs(fn: RewardFunction[Any]) -> frozenset[str]:
    """The keyword arguments reward-kit passes ``fn`` itself, which a request may not give:
    the messages (also under the name of ``fn``'s first parameter), the ground truth, and
    setup's resources. Given anyway they would collide (a TypeError blamed on the function)
    or be silently replaced."""
    names = {"messages", "ground_truth"}
    if fn.mode == "batch":
        names |= {"rollouts_messages", "ground_truths"}
    if fn.setup is not None:
        names.add("resources")
    first = next(iter(inspect.signature(fn.func).parameters.values()), None)
    if first is not None and first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
        names.add(first.name)
    return frozenset(names)


def check_kwargs(item: Item, reserved: frozenset[str], function: str, where: str = "") -> None:
    """Refuse an item whose keyword arguments use a name in ``reserved`` (see above)."""
    if not item.kwargs or reserved.isdisjoint(item.kwargs):
        return
    name = min(reserved.intersection(item.kwargs))
    prefix = f"{where}." if where else ""
    raise InvalidRequest(
        f"{prefix}kwargs: {name!r} cannot be a keyword argument: reward-kit passes "
        f"{function!r} its {_RESERVED_MEANING.get(name, 'messages')} under that name; "
        "rename the argument"
    )


_RESERVED_MEANING = {
    "ground_truth": "ground truth (the item's 'ground_truth' field)",
    "ground_truths": "ground truths (the items' 'ground_truth' fields)",
    "resources": "setup's resources",
}


_PATH_PARTS = 8


def _too_deep(value: list[Any] | dict[str, Any], depth: int) -> list[str] | None:
    """The path (innermost first) to a container nested past ``MAX_JSON_DEPTH``, or None.

    Recursion is bounded: it stops one level past the limit."""
    if depth > MAX_JSON_DEPTH:
        return []
    pairs = value.items() if type(value) is dict else enumerate(value)
    for key, child in pairs:
        if type(child) is list or type(child) is dict:
            path = _too_deep(child, depth + 1)
            if path is not None:
                path.append(str(key))
                return path
    return None


def _check_depth(value: list[Any] | dict[str, Any], key: str, where: str) -> None:
    """Refuse a field nested deeper than MAX_JSON_DEPTH, naming the field (``where.key...``)."""
    inner = _too_deep(value, 1)
    if inner is None:
        return
    # Name the field down to its last object key (``x``, not ``x.0.0.0...``), at most a few
    # levels deep: a chain of 100 keys is no help.
    parts = [key, *reversed(inner)]
    while len(parts) > 1 and parts[-1].isdigit():
        parts.pop()
    if len(parts) > _PATH_PARTS:
        parts = [*parts[:_PATH_PARTS], "..."]
    field = ".".join([where, *parts] if where else parts)
    raise InvalidRequest(
        f"{field}: JSON nested more than {MAX_JSON_DEPTH} levels deep; arrays and objects may "
        f"be nested at most {MAX_JSON_DEPTH} levels inside an item"
    )


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
