"""Reading the evaluator's answers: typed errors (and whether to retry), results, and putting
chunked batches back together. I/O-free, shared by both clients like ``_core``."""

from __future__ import annotations

import functools
import signal
from collections.abc import Iterable
from types import CodeType
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from .._errors import (
    EvaluatorUnavailable,
    InvalidResponse,
    PayloadTooLarge,
    error_from_response,
)
from .._models import EvaluateResult
from .._retry import parse_retry_after
from ._core import RETRY_EXCEPTIONS, RETRY_STATUSES, Failure, loads
from ._results import ItemError, ItemResult

__all__ = [
    "assemble",
    "from_signal_handler",
    "halves",
    "oversize_results",
    "parse_batch",
    "parse_evaluate",
    "parse_json",
    "response_error",
    "transport_error",
]


def transport_error(error: httpx.TransportError, url: str) -> Failure:
    """Turn an httpx failure into the typed error, and say whether it may be retried."""
    kind = type(error).__name__
    wrapped = EvaluatorUnavailable(f"could not reach the evaluator at {url}: {kind}: {error}")
    return Failure(wrapped, isinstance(error, RETRY_EXCEPTIONS))


def from_signal_handler(error: BaseException) -> BaseException | None:
    """The exception behind ``error`` that one of the process's signal handlers raised, if any.

    httpcore reports any OSError met while it waits on a socket as a transport error, and
    TimeoutError is an OSError: a caller's own timer (verl's ``compute_score_timeout`` is a
    SIGALRM handler raising TimeoutError) would pass for a read timeout and be retried, holding
    the caller past its own deadline. Such an exception is the caller's: it is re-raised as is.
    """
    handlers = {_code_of(signal.getsignal(number)) for number in signal.valid_signals()}
    handlers.discard(None)
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and handlers:
        seen.add(id(current))
        trace = current.__traceback__
        while trace is not None:
            if trace.tb_frame.f_code in handlers:
                return current
            trace = trace.tb_next
        current = current.__cause__ or current.__context__
    return None


def _code_of(handler: Any) -> CodeType | None:
    while isinstance(handler, functools.partial):
        handler = handler.func
    function = getattr(handler, "__func__", handler)  # a bound method's function
    code = getattr(function, "__code__", None)
    return code if isinstance(code, CodeType) else None


def response_error(response: httpx.Response) -> Failure:
    """The exception for a non-2xx answer, rebuilt from the server's error body."""
    try:
        payload = loads(response.content)
    except ValueError:
        payload = None
    error = error_from_response(response.status_code, payload)
    error.retry_after = parse_retry_after(response.headers.get("retry-after"))
    # A 504 whose body says the *reward function* timed out is deterministic: retrying would
    # just burn another full deadline. A gateway's 504 (no such body) is retried.
    return Failure(error, response.status_code in RETRY_STATUSES and error.code != "timeout")


def parse_json(response: httpx.Response) -> Any:
    try:
        return loads(response.content)
    except ValueError:
        raise InvalidResponse(
            f"the evaluator answered {response.status_code} with a body that is not JSON"
        ) from None


def parse_evaluate(response: httpx.Response) -> EvaluateResult:
    return EvaluateResult.model_validate(parse_json(response))


def parse_batch(response: httpx.Response, chunk: range) -> list[ItemResult]:
    """Results of one chunk, re-indexed to the caller's positions. Every position must be
    answered exactly once: a short, long or duplicated answer is an error, never a guess."""
    payload = parse_json(response)
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or len(results) != len(chunk):
        got = len(results) if isinstance(results, list) else "no"
        raise InvalidResponse(f"the evaluator answered {got} results for {len(chunk)} items")
    scored = _all_scored(results, chunk)
    if scored is not None:
        return scored
    out: list[ItemResult | None] = [None] * len(chunk)
    for raw in results:
        index = raw.get("index") if isinstance(raw, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(chunk) or out[index] is not None:
            raise InvalidResponse(f"the evaluator answered a bad or repeated index {index!r}")
        out[index] = ItemResult.from_wire(raw, chunk[index])
    return [r for r in out if r is not None]


_RESULTS = TypeAdapter(list[EvaluateResult])


def _all_scored(results: list[Any], chunk: range) -> list[ItemResult] | None:
    """The usual answer, every item ``ok`` and in order, with its results validated in one
    call (a third cheaper than one by one); None for anything else, which the loop in
    :func:`parse_batch` reads (and refuses) item by item, as it always did."""
    for position, raw in enumerate(results):
        if type(raw) is not dict or raw.get("status") != "ok":
            return None
        index = raw.get("index")
        if type(index) is not int or index != position:
            return None
    try:
        validated = _RESULTS.validate_python([raw.get("result") for raw in results])
    except ValidationError:
        return None
    return [
        ItemResult(chunk[i], "ok", result, None, float(raw.get("duration_ms") or 0.0))
        for i, (raw, result) in enumerate(zip(results, validated, strict=True))
    ]


def oversize_results(chunk: range, error: PayloadTooLarge) -> list[ItemResult]:
    """A single item the server refuses as too large fails alone, in its slot."""
    return [
        ItemResult(
            index=i,
            status="invalid",
            result=None,
            error=ItemError(code=error.code, message=error.message),
            duration_ms=0.0,
        )
        for i in chunk
    ]


def halves(chunk: range) -> tuple[range, range]:
    middle = chunk.start + len(chunk) // 2
    return range(chunk.start, middle), range(middle, chunk.stop)


def assemble(size: int, parts: Iterable[list[ItemResult]]) -> list[ItemResult]:
    """Put chunk results back in input order; refuse to return a list with a hole in it."""
    slots: list[ItemResult | None] = [None] * size
    for part in parts:
        for result in part:
            if slots[result.index] is not None:
                raise InvalidResponse(f"item {result.index} was answered twice")
            slots[result.index] = result
    missing = [i for i, r in enumerate(slots) if r is None]
    if missing:
        raise InvalidResponse(f"{len(missing)} item(s) got no result, first {missing[0]}")
    return [r for r in slots if r is not None]
