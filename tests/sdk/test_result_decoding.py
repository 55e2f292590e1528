"""Reading a batch answer: the usual one (every item ok, in order) is validated in one call
(issue 17); it must read exactly as item by item, and anything else still goes item by item."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from reward_kit._errors import InvalidResponse
from reward_kit.sdk._responses import parse_batch
from reward_kit.sdk._results import ItemResult

RESULT = {
    "score": 0.5,
    "reason": "half",
    "is_score_valid": True,
    "metrics": {"m": {"score": 1.0, "reason": "r", "is_score_valid": False}},
    "step_outputs": [{"step_index": 0, "base_reward": 1.0, "metrics": {}, "reason": None}],
    "error": None,
}


def _answer(results: list[Any]) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps({"results": results}))


def _ok(index: int, score: float = 0.5) -> dict[str, Any]:
    return {
        "index": index,
        "status": "ok",
        "result": {**RESULT, "score": score},
        "error": None,
        "duration_ms": 1.5,
    }


def test_an_all_ok_answer_reads_as_item_by_item() -> None:
    results = [_ok(i, score=i / 10) for i in range(8)]
    chunk = range(16, 24)
    parsed = parse_batch(_answer(results), chunk)
    assert parsed == [ItemResult.from_wire(raw, chunk[raw["index"]]) for raw in results]
    assert [r.score for r in parsed] == [i / 10 for i in range(8)]


def test_other_answers_still_read_item_by_item() -> None:
    failed = {"index": 1, "status": "timeout", "error": {"code": "timeout", "message": "late"}}
    results = [_ok(0), failed, _ok(2)]
    parsed = parse_batch(_answer(results), range(3))
    assert [r.status for r in parsed] == ["ok", "timeout", "ok"]
    # Out of order: each goes to its own position.
    shuffled = parse_batch(_answer([_ok(2, 0.2), _ok(0, 0.0), _ok(1, 0.1)]), range(3))
    assert [r.score for r in shuffled] == [0.0, 0.1, 0.2]


def test_a_bad_answer_is_refused_as_before() -> None:
    with pytest.raises(InvalidResponse, match="bad or repeated index"):
        parse_batch(_answer([_ok(0), _ok(0)]), range(2))
    with pytest.raises(InvalidResponse, match=r"bad or repeated index 1\.0"):
        parse_batch(_answer([_ok(0), {**_ok(1), "index": 1.0}]), range(2))
    broken = {**_ok(1), "result": {"reason": "no score"}}
    with pytest.raises(ValidationError, match="score"):
        parse_batch(_answer([_ok(0), broken]), range(2))
