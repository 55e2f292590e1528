"""Outcomes whose result is JSON already: how results cross back from the worker processes.

A result dict costs about a microsecond to pickle and as much to unpickle; its JSON, made once
in the worker, pickles as one bytes object. ``/batch_evaluate`` writes those bytes into its
answer as they are (:meth:`Engine.run_encoded`), so a result evaluated in a worker is never
built into a dict in the server process at all; :meth:`Engine.run` decodes them.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import orjson
from pydantic_core import from_json, to_json

from .._function import RewardFunction
from .._vocabulary import Status
from ._outcome import Outcome, _failed, failure

__all__ = [
    "EncodedOutcome",
    "ItemFields",
    "WireOutcome",
    "encode",
    "evaluate_encoded",
    "from_wire",
    "to_wire",
]

# An EncodedOutcome as it crosses the pipe from a worker: a plain tuple pickles about eight
# times faster (a NamedTuple calls back into Python for each one, both ways).
WireOutcome = tuple[Status, bytes | None, dict[str, str] | None, float]
# An Item's fields, as they cross the pipe to a worker (for the same reason).
ItemFields = tuple[list[Any], Any, dict[str, Any]]


class EncodedOutcome(NamedTuple):
    """An :class:`Outcome` with its result as JSON: the bytes of the result dict.

    >>> outcome = encode(Outcome("ok", {"score": 1.0}, None, 0.5))
    >>> outcome.result, outcome.decode() == Outcome("ok", {"score": 1.0}, None, 0.5)
    (b'{"score":1.0}', True)
    """

    status: Status
    result: bytes | None
    error: dict[str, str] | None
    duration_ms: float

    def decode(self) -> Outcome:
        # pydantic's parser, not orjson's: it reads an integer past 64 bits as that integer,
        # where orjson would turn it into a float.
        result = None if self.result is None else from_json(self.result)
        return Outcome(self.status, result, self.error, self.duration_ms)

    def to_json(self, index: int) -> dict[str, Any]:
        """:meth:`Outcome.to_json`, for ``orjson.dumps``: the same bytes, without decoding."""
        return {
            "index": index,
            "status": self.status,
            "result": None if self.result is None else orjson.Fragment(self.result),
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
        }


def encode(outcome: Outcome) -> EncodedOutcome:
    """``outcome`` with its result as JSON (the bytes ``orjson.dumps`` writes). pydantic writes
    what orjson cannot, an integer past 64 bits in a metric, as a worker does; a result that
    is not JSON at all is that item's error, never a failed answer for the whole batch."""
    if outcome.result is None:
        return EncodedOutcome(outcome.status, None, outcome.error, outcome.duration_ms)
    try:
        result = orjson.dumps(outcome.result)
    except TypeError:
        try:
            result = to_json(outcome.result)
        except ValueError as error:  # PydanticSerializationError
            message = f"the reward function's result cannot be sent as JSON: {error}"
            return encode(failure("error", message, outcome.duration_ms))
    return EncodedOutcome(outcome.status, result, outcome.error, outcome.duration_ms)


def to_wire(outcome: Outcome) -> WireOutcome:
    """:func:`encode`, as the plain tuple a worker sends back."""
    encoded = encode(outcome)
    return (encoded.status, encoded.result, encoded.error, encoded.duration_ms)


def from_wire(rows: list[WireOutcome]) -> list[EncodedOutcome]:
    # tuple.__new__, not _make: no Python call per outcome (the rows are the worker's own).
    return [tuple.__new__(EncodedOutcome, row) for row in rows]


def evaluate_encoded(fn: RewardFunction[Any], item: ItemFields) -> WireOutcome:
    """:func:`evaluate_item`, as a worker runs it: the result serialized once, from the model
    (:meth:`RewardFunction.invoke_encoded`), and the outcome as it crosses the pipe. The item
    may be an :class:`Item` or the plain tuple it crossed the pipe as."""
    messages, ground_truth, kwargs = item
    start = time.perf_counter()
    try:
        result = fn.invoke_encoded(messages, ground_truth, kwargs)
    except BaseException as error:  # SystemExit too; _failed re-raises the deadline signal
        return to_wire(_failed(error, start))
    return ("ok", result, None, (time.perf_counter() - start) * 1000.0)
