"""The wire format: parsing and validating request bodies into engine items.

One item shape serves every compatible client: reward-kit's generic server
(``{messages, ground_truth, kwargs}``), the Fireworks shim (``... tools``) and reward-kit's
remote ``RewardFunction`` (a flat body whose extra keys are kwargs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, Required, TypedDict

from .._calling import format_validation_error
from .._errors import (
    FunctionRequired,
    InvalidRequest,
    MalformedJSON,
    PayloadTooLarge,
    UnknownFunction,
)
from .._function import RewardFunction
from ._outcome import Item

__all__ = [
    "MAX_JSON_DEPTH",
    "parse_batch",
    "parse_item",
    "parse_json",
    "parse_timeout",
    "pick_function",
]

# How deep arrays/objects may nest inside one item (a top-level field's value is level 1).
# Real payloads (chat messages, tool schemas) stay under ~20; nesting in the hundreds breaks
# pickling to the worker processes (RecursionError near 500) and is refused here, with the
# field, before it reaches the engine. orjson's own limit (1024) bounds the whole body.
MAX_JSON_DEPTH = 100
RESERVED = frozenset({"messages", "ground_truth", "tools", "kwargs", "function"})


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
    known: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in data.items():  # one pass: this runs for every item of every batch
        (known if key in RESERVED else extras)[key] = value
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


def pick_function(
    functions: Mapping[str, RewardFunction[Any]], *names: str | None
) -> RewardFunction[Any]:
    """The function named by the path and/or the body (they must agree), or the only one."""
    given = [n for n in names if n is not None]
    if len(set(given)) > 1:
        raise InvalidRequest(
            f"function: the request names both {given[0]!r} and {given[1]!r}; name one"
        )
    if given:
        fn = functions.get(given[0])
        if fn is None:
            raise UnknownFunction(
                f"no reward function named {given[0]!r}; served: {', '.join(sorted(functions))}"
            )
        return fn
    if len(functions) == 1:
        return next(iter(functions.values()))
    raise FunctionRequired(
        f"{len(functions)} reward functions are served ({', '.join(sorted(functions))}); name "
        "one in the path (/evaluate/NAME) or in the 'function' field"
    )


def parse_timeout(requested: str | None, *, maximum: float) -> float | None:
    """A per-request ``?timeout=`` override, checked against the server maximum."""
    if requested is None:
        return None
    try:
        value = float(requested)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise InvalidRequest(f"timeout: expected a positive number of seconds, got {requested!r}")
    if value > maximum:
        raise InvalidRequest(
            f"timeout: {value:g}s is above this server's maximum of {maximum:g}s (--max-timeout)"
        )
    return value


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
