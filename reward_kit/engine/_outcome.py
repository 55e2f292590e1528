"""What the engine produces for one item, and how one item is evaluated wherever it runs."""

from __future__ import annotations

import asyncio
import time
from typing import Any, NamedTuple

from .._errors import InvalidRequest
from .._function import RewardFunction
from .._vocabulary import ERROR_FOR_STATUS, Status

__all__ = [
    "DeadlineSignal",
    "Item",
    "Outcome",
    "Status",
    "aevaluate_group",
    "aevaluate_item",
    "evaluate_group",
    "evaluate_item",
    "failure",
]


class Item(NamedTuple):
    """One evaluation request after validation (plain data: it crosses process boundaries)."""

    messages: list[Any]
    ground_truth: Any = None
    kwargs: dict[str, Any] = {}  # noqa: RUF012 - NamedTuple defaults are never mutated


class Outcome(NamedTuple):
    """The result of one item: a result dict when ``status == "ok"``, else an error."""

    status: Status
    result: dict[str, Any] | None
    error: dict[str, str] | None
    duration_ms: float

    def to_json(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
        }


def failure(status: Status, message: str, duration_ms: float = 0.0, code: str = "") -> Outcome:
    code = code or ERROR_FOR_STATUS[status].code
    return Outcome(status, None, {"code": code, "message": message}, duration_ms)


class DeadlineSignal(BaseException):
    """The engine's own soft-deadline interrupt (raised by SIGALRM in a worker).

    A BaseException so that ``except Exception`` in reward code does not swallow it, and the
    one BaseException the evaluation functions below let through: every other one a reward
    raises (``SystemExit`` from ``sys.exit()`` or an argparse error, ``KeyboardInterrupt``...)
    is that item's error, never the process's exit.
    """


def describe_exception(error: BaseException) -> str:
    try:
        text = str(error)
    except BaseException:  # a hostile __str__ must not fail the request
        text = "<the exception's message could not be read>"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _failed(error: BaseException, start: float) -> Outcome:
    if isinstance(error, DeadlineSignal):
        raise error
    if isinstance(error, InvalidRequest):
        return failure("invalid", error.message, _ms(start))
    if isinstance(error, MemoryError):
        return failure("crashed", "the reward function ran out of memory (MemoryError)", _ms(start))
    return failure("error", describe_exception(error), _ms(start))


def evaluate_item(fn: RewardFunction[Any], item: Item) -> Outcome:
    """Run one pointwise item here; the function's exceptions become a failure outcome."""
    start = time.perf_counter()
    try:
        result = fn.invoke_json(item.messages, item.ground_truth, item.kwargs)
    except BaseException as error:  # SystemExit too; _failed re-raises the deadline signal
        return _failed(error, start)
    return Outcome("ok", result, None, _ms(start))


async def aevaluate_item(fn: RewardFunction[Any], item: Item) -> Outcome:
    """The async twin of :func:`evaluate_item`, on the current event loop."""
    start = time.perf_counter()
    try:
        result = await fn.ainvoke_json(item.messages, item.ground_truth, item.kwargs)
    except asyncio.CancelledError:  # the engine's deadline or the request went away
        raise
    except BaseException as error:  # SystemExit too; _failed re-raises the deadline signal
        return _failed(error, start)
    return Outcome("ok", result, None, _ms(start))


def _group_succeeded(results: Any, start: float) -> list[Outcome]:
    duration = _ms(start)
    return [Outcome("ok", r.model_dump(mode="json"), None, duration) for r in results]


def evaluate_group(fn: RewardFunction[Any], items: list[Item]) -> list[Outcome]:
    """Run a batch-mode function once over all items; one failure fails the whole group."""
    start = time.perf_counter()
    try:
        return _group_succeeded(fn.invoke(*merge_group(items)), start)
    except BaseException as error:  # SystemExit too; _failed re-raises the deadline signal
        return [_failed(error, start)] * len(items)


async def aevaluate_group(fn: RewardFunction[Any], items: list[Item]) -> list[Outcome]:
    """The async twin of :func:`evaluate_group`."""
    start = time.perf_counter()
    try:
        return _group_succeeded(await fn.ainvoke(*merge_group(items)), start)
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # SystemExit too; _failed re-raises the deadline signal
        return [_failed(error, start)] * len(items)


def merge_group(items: list[Item]) -> tuple[list[Any], list[Any], dict[str, list[Any]]]:
    """Batch functions see columns, TRL-style: each kwarg becomes a list aligned with rollouts."""
    keys: dict[str, None] = {}
    for item in items:
        keys.update(dict.fromkeys(item.kwargs))
    kwargs = {key: [item.kwargs.get(key) for item in items] for key in keys}
    return [i.messages for i in items], [i.ground_truth for i in items], kwargs


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
