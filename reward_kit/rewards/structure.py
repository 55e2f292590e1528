"""Structured-output rewards: JSON Schema validation and tool calls."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from .._errors import InvalidRequest
from .._extras import require
from .._function import reward_function
from .._models import EvaluateResult, Message
from ._common import check_bool, check_choice, completion, kind, metric, result, short

__all__ = ["extract_json", "json_schema_reward", "tool_call_reward"]

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)
_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_NAME_SEPARATORS = re.compile(r"[\s_-]+")


def extract_json(text: str) -> tuple[Any, bool]:
    """The JSON value in ``text``: a fenced block, else the first decodable object or array.
    Returns (value, found)."""
    decoder = json.JSONDecoder()
    for block in _FENCE.findall(text):
        try:
            return json.loads(block), True
        except json.JSONDecodeError:
            continue
    for index, char in enumerate(text):
        if char in "{[":
            try:
                return decoder.raw_decode(text, index)[0], True
            except json.JSONDecodeError:
                continue
    return None, False


def _load_json(value: Any, field: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise InvalidRequest(f"{field}: not valid JSON: {error}") from None
    return value


@reward_function(timeout=10, requirements=["jsonschema>=4"])
def json_schema_reward(
    messages: list[Message],
    ground_truth: dict[str, Any] | str | None = None,
    *,
    schema: dict[str, Any] | str | None = None,
    partial_credit: bool = True,
) -> EvaluateResult:
    """The JSON in the response validates against a JSON Schema (``jsonschema``).

    With ``partial_credit``, an object that fails scores the share of the schema's top-level
    properties (listed or required) that have no error; a failure at the root scores 0.
    ground_truth: the schema (dict or JSON string), unless given as ``schema``.

    >>> json_schema_reward([{"role": "assistant", "content": '{"a": 1}'}],
    ...     ground_truth={"type": "object", "required": ["a"]}).score  # doctest: +SKIP
    1.0
    """
    check_bool("partial_credit", partial_credit)
    jsonschema = require("jsonschema", extra="structure", feature="json_schema_reward")
    spec = _load_json(
        schema if schema is not None else ground_truth,
        "schema" if schema is not None else "ground_truth",
    )
    if not isinstance(spec, (dict, bool)):
        field = "schema" if schema is not None else "ground_truth"
        raise InvalidRequest(
            f"{field}: json_schema_reward expected a JSON Schema (an object, or its JSON "
            f"text) as schema or ground_truth, got {kind(spec)}"
        )
    validator_class = jsonschema.validators.validator_for(spec)
    try:
        validator_class.check_schema(spec)
    except jsonschema.SchemaError as error:
        raise InvalidRequest(f"schema: not a valid JSON Schema: {error.message}") from None
    value, found = extract_json(completion(messages).text)
    if not found:
        why = "no JSON value found in the response"
        return result(0.0, why, {"json_found": metric(0.0, why)})
    errors = list(validator_class(spec).iter_errors(value))
    metrics = {"json_found": metric(1.0, "parsed a JSON value")}
    if not errors:
        metrics["schema_valid"] = metric(1.0, "no validation errors")
        return result(1.0, "valid against the schema", metrics)
    listing = "; ".join(
        short(f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}", 80) for e in errors[:5]
    )
    metrics["schema_valid"] = metric(0.0, f"{len(errors)} error(s): {listing}")
    keys = (
        set(spec.get("properties", {})) | set(spec.get("required", []))
        if isinstance(spec, dict)
        else set()
    )
    failing: set[str] = set()
    at_root = False
    for problem in errors:
        if problem.absolute_path:
            failing.add(str(problem.absolute_path[0]))
        elif problem.validator == "required":
            missing = problem.validator_value if isinstance(value, dict) else ()
            failing.update(str(k) for k in missing if k not in value)
        else:
            at_root = True
    score = 0.0
    if partial_credit and keys and not at_root and isinstance(value, dict):
        score = len(keys - failing) / len(keys)
        metrics["properties_valid"] = metric(score, f"{len(keys - failing)} of {len(keys)} ok")
    return result(score, f"{len(errors)} validation error(s): {listing}", metrics)


def _as_call(raw: Any, field: str) -> tuple[str, Any]:
    """(name, arguments) from an OpenAI tool call, a ``{"name", "arguments"}`` dict, or
    a :class:`ToolCall`; arguments decoded from JSON when they are a string."""
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{field}: a tool call must be an object, got {type(raw).__name__}")
    body = raw.get("function", raw) if isinstance(raw.get("function"), dict) else raw
    name = body.get("name")
    if not isinstance(name, str):
        raise InvalidRequest(f"{field}: a tool call needs a 'name' string, got {kind(name)}")
    arguments = body.get("arguments", body.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return name, _Unparsed(arguments)
    return name, arguments


class _Unparsed(str):
    """Arguments that were not valid JSON: they match nothing."""


def _produced(message: Message) -> list[tuple[str, Any]]:
    if message.tool_calls:
        return [_as_call(call, "tool_calls") for call in message.tool_calls]
    calls = []
    for block in _TOOL_CALL.findall(message.text):
        try:
            calls.append(_as_call(json.loads(block), "<tool_call>"))
        except (json.JSONDecodeError, InvalidRequest):
            calls.append(("", _Unparsed(block)))  # the model's malformed call: it scores 0
    return calls


def _relaxed_equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and isinstance(actual, str):
        return " ".join(expected.lower().split()) == " ".join(actual.lower().split())
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, (*numbers, str)):
        try:
            return math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            _relaxed_equal(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(_relaxed_equal, expected, actual))
    return bool(expected == actual)


def _relaxed_name(name: str) -> str:
    """``Get-Weather``, ``get weather`` and ``get_weather`` are the same tool when relaxed."""
    return _NAME_SEPARATORS.sub("_", name.strip().casefold())


def _call_score(expected: tuple[str, Any], actual: tuple[str, Any], relaxed: bool) -> float:
    (name, want), (got_name, got) = expected, actual
    if relaxed:
        name, got_name = _relaxed_name(name), _relaxed_name(got_name)
    if name != got_name or isinstance(got, _Unparsed):
        return 0.0
    if not relaxed:
        return float(want == got)
    if not isinstance(want, dict) or not isinstance(got, dict):
        return float(_relaxed_equal(want, got))
    keys = set(want) | set(got)
    if not keys:
        return 1.0
    return sum(k in want and k in got and _relaxed_equal(want[k], got[k]) for k in keys) / len(keys)


@reward_function(timeout=10)
def tool_call_reward(
    messages: list[Message],
    ground_truth: list[Any] | dict[str, Any] | str | None = None,
    *,
    match: Literal["exact", "relaxed"] = "exact",
    order_matters: bool = False,
) -> EvaluateResult:
    """The response's tool calls (OpenAI ``tool_calls``, else ``<tool_call>{json}</tool_call>``
    in the text) against the expected calls.

    ``exact``: a call counts when name and arguments are equal. ``relaxed``: names compare
    ignoring case, ``-``/``_`` and spaces; per-argument credit, strings compare case- and
    whitespace-insensitively, numbers by value. Score: matched credit /
    max(expected, produced) calls, pairing calls in order or, by default, best-first.
    ground_truth: a list of calls ``[{"name": ..., "arguments": {...}}]`` (OpenAI shape too), or
    ``{"tool_calls": [...]}``; an empty list expects no call.

    >>> tool_call_reward([{"role": "assistant", "content": None, "tool_calls": [{"type":
    ...     "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]}],
    ...     ground_truth=[{"name": "f", "arguments": {"x": 1}}]).score
    1.0
    """
    check_choice("match", match, ("exact", "relaxed"))
    check_bool("order_matters", order_matters)
    gold = _load_json(ground_truth, "ground_truth")
    if isinstance(gold, dict):
        gold = gold.get("tool_calls", [gold] if "name" in gold or "function" in gold else gold)
    if not isinstance(gold, list):
        raise InvalidRequest(
            "ground_truth: tool_call_reward expected a list of tool calls "
            '[{"name": ..., "arguments": {...}}] or {"tool_calls": [...]}, '
            f"got {kind(gold)}"
        )
    expected = [_as_call(call, f"ground_truth.{i}") for i, call in enumerate(gold)]
    for index, (_, arguments) in enumerate(expected):
        # The model's malformed arguments score 0; the ground truth's are a bad request.
        if isinstance(arguments, _Unparsed) or not isinstance(arguments, dict):
            raise InvalidRequest(
                f"ground_truth.{index}.arguments: expected an object (or its JSON text), "
                f"got {kind(arguments)}"
            )
    produced = _produced(completion(messages))
    if not expected:
        ok = not produced
        why = "no call expected, none made" if ok else f"no call expected, {len(produced)} made"
        return result(float(ok), why, {"calls": metric(float(ok), why)})
    relaxed = match == "relaxed"
    metrics = {}
    total = 0.0
    free = list(range(len(produced)))
    for i, call in enumerate(expected):
        if order_matters:
            pick = i if i < len(produced) else None
        else:
            pick = max(free, key=lambda j: _call_score(call, produced[j], relaxed), default=None)
        credit = _call_score(call, produced[pick], relaxed) if pick is not None else 0.0
        if pick is not None and pick in free:
            free.remove(pick)
        total += credit
        got = f"got {produced[pick][0]!r}" if pick is not None else "no call to pair with"
        metrics[f"call_{i}_{call[0]}"] = metric(credit, got)
    score = total / max(len(expected), len(produced))
    why = f"{total:g} of {len(expected)} expected call(s) matched, {len(produced)} made ({match})"
    return result(score, why, metrics)
