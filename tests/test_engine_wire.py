"""The engine's fast paths give exactly what the slow ones gave (issue 17).

* Items of the common shape are checked in Python instead of by pydantic: the same Item, key
  order included, or (through the full validation) the same error, for any item.
* Results leave a worker as JSON made from the model: the bytes orjson writes from the dict.
* ``Engine.run_encoded`` (what /batch_evaluate uses) answers as ``Engine.run`` does.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import orjson
import pytest

from reward_kit import EvaluateResult, MetricResult, StepOutput, reward_function
from reward_kit._calling import result_bytes, result_json
from reward_kit._errors import InvalidRequest
from reward_kit.engine import (
    Call,
    EncodedOutcome,
    Engine,
    Item,
    Outcome,
    RawItem,
    _items,
    check_kwargs,
    failure,
    parse_item,
    reserved_kwargs,
)

from .conftest import FIXTURES

ABSENT = object()


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


MESSAGES: list[Any] = [
    {"role": "user", "content": "2+2?"},
    {"content": "4", "role": "assistant"},
    {"role": "user", "content": None},
    {"role": "user"},
    {"role": "user", "content": "x", "name": "bob"},
    {"role": "tool", "content": "x", "tool_call_id": "call-1"},
    {"role": "user", "content": "x", "name": None, "tool_call_id": None},
    {"tool_call_id": "c", "content": "x", "role": "tool", "name": "n"},
    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    {"role": "user", "content": [1]},
    {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}}]},
    {"role": "user", "content": "x", "reasoning_content": "think"},
    {"role": 1, "content": "x"},
    {"content": "x"},
    {"role": "user", "content": 5},
    {"role": "user", "content": "x", "name": True},
    {"role": "user", "content": "x", "extra": _deep(120)},
    "not a message",
    None,
]
FIELDS: dict[str, list[Any]] = {
    "ground_truth": [ABSENT, None, "4", 4, 0.5, True, [1, [2]], {"a": [1]}, _deep(120)],
    # {1: "x"}: not JSON, but parse_item also takes rows from Python callers
    "kwargs": [ABSENT, {}, {"x": 1}, {"topic": "clash"}, None, [1], "no", {1: "x"}, _deep(120)],
    "tools": [ABSENT, None, [{"type": "function"}], [], "not a list", {"a": 1}, [_deep(120)]],
    "function": [ABSENT, None, "exact", "", 3, ["f"]],
    "topic": [ABSENT, "math", None, [1, 2], {"k": "v"}, _deep(120)],
}


def _random_item(rng: random.Random) -> Any:
    if rng.random() < 0.03:
        return rng.choice([[], "item", None, 5])
    item: dict[str, Any] = {}
    shape = rng.random()
    if shape < 0.05:
        item["messages"] = rng.choice([[], "x", None, {"role": "user"}])
    elif shape > 0.02:
        common = rng.random() < 0.5
        pool = MESSAGES[:2] if common else MESSAGES
        item["messages"] = [rng.choice(pool) for _ in range(rng.randint(1, 3))]
    for name, values in FIELDS.items():
        value = rng.choice(values)
        if value is not ABSENT:
            item[name] = value
    keys = list(item)
    rng.shuffle(keys)
    return {key: item[key] for key in keys}


def _parsed(data: Any, where: str) -> tuple[str, str]:
    try:
        item, function = parse_item(data, where)
    except InvalidRequest as error:
        return "error", error.message
    # repr keeps dict key order, which the validated copies have too
    return "ok", repr((item, function))


def test_plain_items_parse_exactly_as_the_full_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(17)
    items = [_random_item(rng) for _ in range(4000)]
    items += [{"messages": [message]} for message in MESSAGES]
    fast = [_parsed(item, f"items.{i}") for i, item in enumerate(items)]
    took_fast_path = sum(type(i) is dict and _items._plain_item(i) is not None for i in items)
    monkeypatch.setattr(_items, "_plain_item", lambda data: None)
    slow = [_parsed(item, f"items.{i}") for i, item in enumerate(items)]
    assert fast == slow
    # Not a vacuous comparison: valid and refused items, and the fast path taken, many times.
    valid = sum(status == "ok" for status, _ in slow)
    assert valid > 200
    assert len(slow) - valid > 200
    assert took_fast_path > 100


def test_the_common_item_takes_the_fast_path() -> None:
    item = {"messages": MESSAGES[:2], "ground_truth": "4", "topic": "math"}
    plain = _items._plain_item(item)
    assert plain is not None
    parsed, function = plain
    assert parsed == Item(
        [MESSAGES[0], {"role": "assistant", "content": "4"}], "4", {"topic": "math"}
    )
    assert function is None
    # Copies, as validation makes: the caller's dicts are not the item's.
    assert parsed.messages[0] is not item["messages"][0]


RESULTS: list[Any] = [
    1.0,
    0,
    True,
    False,
    7,
    2**60,
    0.1 + 0.2,
    {"score": 0.5, "reason": "from a dict"},
    EvaluateResult(score=1.0),
    EvaluateResult(
        score=0.25,
        reason='quotes " and \\ and \u2028 and é and \x00',
        is_score_valid=False,
        metrics={"m": MetricResult(score=1e-7, reason="tiny"), "n": MetricResult(score=1e21)},
        step_outputs=[
            StepOutput(step_index=0, base_reward=0.5, metrics={"a": [1, 2], "b": None}),
            StepOutput(step_index="turn-2", base_reward=-3.0, reason="r"),
        ],
        error="soft",
    ),
]


def test_results_serialized_from_the_model_are_the_bytes_orjson_writes() -> None:
    rng = random.Random(17)
    values = RESULTS + [rng.uniform(-1e6, 1e6) for _ in range(300)]
    values += [EvaluateResult(score=rng.random() * 10 ** rng.randint(-30, 30)) for _ in range(300)]
    for value in values:
        assert result_bytes(value, "f") == orjson.dumps(result_json(value, "f")), value


def test_an_invalid_result_raises_the_same_either_way() -> None:
    for value in (math.nan, "a string", {"reason": "no score"}):
        with pytest.raises((TypeError, ValueError)) as slow:
            result_json(value, "f")
        with pytest.raises(type(slow.value), match=str(slow.value)[:40].replace("(", ".")):
            result_bytes(value, "f")


def test_encoded_outcomes_read_and_write_as_outcomes() -> None:
    outcome = Outcome("ok", result_json(RESULTS[-1], "f"), None, 1.23456)
    encoded = EncodedOutcome(outcome.status, orjson.dumps(outcome.result), None, 1.23456)
    assert encoded.decode() == outcome
    answer = orjson.dumps({"results": [outcome.to_json(3)]})
    assert orjson.dumps({"results": [encoded.to_json(3)]}) == answer
    failed = Outcome("timeout", None, {"code": "timeout", "message": "late"}, 5.0)
    assert EncodedOutcome(*failed).decode() == failed


@reward_function(isolation="inline")
def _inline(messages: Any, ground_truth: Any = None) -> float:
    return 1.0 if messages[-1].text == ground_truth else 0.0


@reward_function(isolation="inline")
def _huge(messages: Any) -> EvaluateResult:
    # An integer past 64 bits in a step's metrics: valid for pydantic, not for orjson.
    return EvaluateResult(score=1.0, step_outputs=[StepOutput(step_index=0, base_reward=1.0,
                                                              metrics={"n": 2**70})])  # fmt: skip


def test_run_encoded_answers_as_run_does() -> None:
    from reward_kit import load_functions

    pooled = load_functions([str(FIXTURES / "hostile.py")])["good"]
    functions = {"good": pooled, "_inline": _inline, "_huge": _huge}
    messages = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    calls = [
        Call(functions[name], Item(messages, truth), 10.0)
        for name in ("good", "_inline", "good", "_inline", "_huge")
        for truth in ("4", "5")
    ]

    async def both() -> tuple[list[Outcome], list[EncodedOutcome]]:
        async with Engine(functions=functions, workers=1) as engine:
            return await engine.run(calls), await engine.run_encoded(calls)

    plain, encoded = asyncio.run(both())
    decoded = [e.decode() for e in encoded]
    assert [o._replace(duration_ms=0) for o in decoded[:8]] == [
        o._replace(duration_ms=0) for o in plain[:8]
    ]
    assert [o.result["score"] for o in decoded[:4] if o.result] == [1.0, 0.0, 1.0, 0.0]
    # An integer orjson cannot write (it used to fail the whole /batch_evaluate answer) is
    # written, and read back, as that integer.
    assert plain[8].result is not None
    assert plain[8].result["step_outputs"][0]["metrics"] == {"n": 2**70}
    assert encoded[8].status == "ok"
    assert decoded[8] == plain[8]._replace(duration_ms=decoded[8].duration_ms)
    assert b'"n":1180591620717411303424' in (encoded[8].result or b"")


def _validated_here(fn: Any, data: Any, where: str) -> Item | Outcome:
    """What /batch_evaluate did before items were validated in the workers."""
    try:
        item, _ = parse_item(data, where)
        check_kwargs(item, reserved_kwargs(fn), fn.name, where)
    except InvalidRequest as error:
        return failure("invalid", error.message, code=error.code)
    return item


def test_raw_items_validated_in_a_worker_get_what_the_server_would_give() -> None:
    from reward_kit import load_functions

    echo = load_functions([str(FIXTURES / "hostile.py")])["good"]
    rng = random.Random(29)
    data = [_random_item(rng) for _ in range(1500)]
    data = [d for d in data if type(d) is dict and type(d.get("function")) in (str, type(None))]
    data += [{"messages": MESSAGES[:2], "ground_truth": "4", "messages_": 1, "ground_truth_": 2}]
    data += [{"messages": MESSAGES[:2], "kwargs": {"ground_truth": "5"}}]  # reserved: refused
    here = [_validated_here(echo, d, f"items.{i}") for i, d in enumerate(data)]
    raw = [Call(echo, RawItem(d, f"items.{i}"), 10.0) for i, d in enumerate(data)]

    async def pooled() -> list[Outcome]:
        async with Engine(functions={"good": echo}, workers=1) as engine:
            return await engine.run(raw)

    got = asyncio.run(pooled())
    invalid = [i for i, h in enumerate(here) if isinstance(h, Outcome)]
    assert [i for i, o in enumerate(got) if o.status == "invalid"] == invalid
    assert [got[i] for i in invalid] == [here[i] for i in invalid]  # the same message, code
    assert all(got[i].status == "ok" for i in range(len(data)) if i not in invalid)
    # Not vacuous: many of each, and a reserved keyword refused in the worker.
    assert len(invalid) > 100
    assert len(data) - len(invalid) > 50
    assert "'ground_truth' cannot be a keyword argument" in str(got[-1].error)


def test_a_chunk_that_cannot_be_sent_as_json_is_validated_here() -> None:
    from reward_kit import load_functions

    echo = load_functions([str(FIXTURES / "hostile.py")])["good"]
    messages = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    rows = [
        {"messages": messages, "ground_truth": "4", "big": 2**70},  # orjson cannot write it
        {"messages": messages, "ground_truth": "4", "deep": _deep(120)},
        {"messages": "not a list"},
    ]
    calls = [Call(echo, RawItem(row, f"items.{i}"), 10.0) for i, row in enumerate(rows)]

    async def pooled() -> list[Outcome]:
        async with Engine(functions={"good": echo}, workers=1) as engine:
            return await engine.run(calls)

    big, deep, bad = asyncio.run(pooled())
    assert big.status == "ok"
    assert big.result is not None
    assert big.result["score"] == 1.0
    assert (deep.status, bad.status) == ("invalid", "invalid")
    assert "items.1.deep" in str(deep.error)
    assert "items.2.messages" in str(bad.error)


def _plain_message(rng: random.Random) -> dict[str, Any]:
    message: dict[str, Any] = {"role": rng.choice(["user", "assistant", "system", "tool"])}
    for key in ("content", "name", "tool_call_id"):
        if rng.random() < 0.6:
            message[key] = rng.choice([None, "", "4", 'ü\n"quoted"', "x" * 300])
    return message


def _plain_items(rng: random.Random, count: int) -> list[dict[str, Any]]:
    truths = [None, "", "4", "ü", 4, -7, 0, 2**62, 0.1, -2.5e-300, 1e300, True, False]
    items = []
    for _ in range(count):
        item: dict[str, Any] = {"messages": [_plain_message(rng) for _ in range(rng.randint(1, 4))]}
        if rng.random() < 0.85:
            item["ground_truth"] = rng.choice(truths)
        items.append(item)
    return items


def _as_compared(decoded: list[Any]) -> list[Any]:
    return [
        (
            [(type(m), m.model_dump(exclude_unset=True)) for m in row[0]],
            (type(row[1]), row[1]),
            row[2],
        )
        for row in decoded
    ]


def test_a_chunk_of_common_items_decodes_from_its_bytes_as_item_by_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: such a chunk is validated from its bytes in one call, with exactly what the
    item-by-item checks give; one other item anywhere sends the chunk item by item."""
    from reward_kit import load_functions
    from reward_kit.engine import _raw

    echo = load_functions([str(FIXTURES / "hostile.py")])["good"]
    items = _plain_items(random.Random(31), 600)
    payload = _raw.encode_chunk([RawItem(d, f"items.{i}") for i, d in enumerate(items)])
    assert payload is not None
    fast = _raw._decode_plain(payload)
    assert fast is not None
    with monkeypatch.context() as patch:
        patch.setattr(_raw, "_decode_plain", lambda payload: None)
        slow = _raw.decode_chunk(payload, echo)
    assert _as_compared(fast) == _as_compared(slow)
    assert _raw.decode_chunk(payload, echo) == fast
    odd_fields: list[dict[str, Any]] = [
        {"kwargs": {}},
        {"topic": "x"},
        {"ground_truth": [1]},
        {"function": None},
    ]
    for odd in odd_fields:
        mixed = [*items[:10], {**items[10], **odd}]
        mixed_payload = _raw.encode_chunk([RawItem(d, f"items.{i}") for i, d in enumerate(mixed)])
        assert mixed_payload is not None
        assert _raw._decode_plain(mixed_payload) is None, odd
    empty = _raw.encode_chunk([RawItem({"messages": []}, "items.0")])
    assert empty is not None
    assert _raw._decode_plain(empty) is None
