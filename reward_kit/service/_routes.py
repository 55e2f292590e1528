"""HTTP handlers: health, function listing, /evaluate (and /reward), /batch_evaluate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .._errors import RequestRejected, RewardKitError
from .._function import RewardFunction
from .._version import __version__
from .._vocabulary import ERROR_FOR_STATUS
from ..engine import (
    Call,
    EncodedOutcome,
    Engine,
    Item,
    Outcome,
    RawItem,
    check_kwargs,
    failure,
    parse_batch,
    parse_item,
    parse_json,
    reserved_kwargs,
)
from ._admission import AdmissionQueue, Slot, count_items
from ._body import BodyDeadlines, too_large
from ._error_response import render_error
from ._metrics import Metrics
from ._settings import ServeSettings
from ._wire import check_content_type, parse_timeout, pick_function

__all__ = ["Service", "error_response", "json_response"]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def error_response(error: RewardKitError) -> Response:
    """The JSON answer for ``error`` (see _error_response.render_error)."""
    status, headers, body = render_error(error)
    response = Response(body, status_code=status)
    response.raw_headers = headers
    return response


def _routed(data: Any, where: str) -> tuple[Item | RawItem, str | None]:
    """The item, and the function it names: an object whose ``function`` is a name (or
    absent) stays raw, for the engine to validate where it runs (in the worker processes, in
    parallel, for a pooled function); anything else is validated now, for its error."""
    if type(data) is dict:
        name = data.get("function")
        if name is None or type(name) is str:
            return RawItem(data, where), name
    return parse_item(data, where)


def _all_unrouted(items: list[Any]) -> bool:
    """Every item is an object that names no function of its own: the whole batch goes to
    the one function the request or the server names (``/batch_evaluate``'s common case)."""
    return all(type(data) is dict and "function" not in data for data in items)


def _results_response(outcomes: Sequence[Outcome | EncodedOutcome]) -> Response:
    return json_response({"results": [o.to_json(i) for i, o in enumerate(outcomes)]})


class Service:
    """The state the handlers share: functions, engine, settings and the admission queue."""

    def __init__(
        self,
        *,
        functions: Mapping[str, RewardFunction[Any]],
        engine: Engine,
        settings: ServeSettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.admission = AdmissionQueue(
            slots=settings.max_in_flight,
            max_queued=settings.max_queued,
            timeout=settings.queue_timeout,
            metrics=metrics,
        )
        self.reserved = {name: reserved_kwargs(fn) for name, fn in self.functions.items()}
        self.body_deadlines = BodyDeadlines(settings.body_timeout)
        if metrics is not None:
            # Read when scraped, so admitting a request costs nothing extra.
            admission = self.admission
            metrics.track_admission(lambda: admission.in_flight, lambda: admission.queued)

    def admit(self, request: Request | None = None) -> Slot:
        """``async with service.admit(request):`` holds one of the ``--max-in-flight`` slots,
        waiting in the queue for one if needed, or refuses the request (429; 503 while the
        server shuts down). Given the request, a queued one whose client disconnects leaves
        the queue. Call it after reading the body (see :meth:`read_body`)."""
        return self.admission.slot(request.receive if request is not None else None)

    def drain(self) -> None:
        """Shutdown has begun: queued requests are answered 503 now, new ones too."""
        self.admission.drain()

    async def run(self, calls: list[Call]) -> list[Outcome]:
        """Evaluate through the engine and count the outcomes per function."""
        count_items(len(calls))
        outcomes = await self.engine.run(calls)
        self._observe(calls, outcomes)
        return outcomes

    async def run_encoded(self, calls: list[Call]) -> list[EncodedOutcome]:
        """:meth:`run`, with each result as JSON (see ``Engine.run_encoded``)."""
        count_items(len(calls))
        outcomes = await self.engine.run_encoded(calls)
        self._observe(calls, outcomes)
        return outcomes

    async def run_function_encoded(
        self, fn: RewardFunction[Any], items: list[RawItem], timeout: float
    ) -> list[EncodedOutcome]:
        """:meth:`run_encoded` for a batch of one function (see ``Engine.run_function_encoded``)."""
        count_items(len(items))
        outcomes = await self.engine.run_function_encoded(fn, items, timeout)
        if self.metrics is not None:
            self.metrics.observe_outcomes(fn.name, outcomes)
        return outcomes

    def _observe(self, calls: list[Call], outcomes: Sequence[Outcome | EncodedOutcome]) -> None:
        if self.metrics is not None and len(calls) == 1:
            self.metrics.observe_outcomes(calls[0].function.name, outcomes)
        elif self.metrics is not None:
            by_function: dict[str, list[Outcome | EncodedOutcome]] = {}
            for call, outcome in zip(calls, outcomes, strict=True):
                by_function.setdefault(call.function.name, []).append(outcome)
            for name, group in by_function.items():
                self.metrics.observe_outcomes(name, group)

    async def render_metrics(self, request: Request) -> Response:
        assert self.metrics is not None
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def read_body(self, request: Request) -> bytes:
        """The request body, declared JSON (else 415), at most ``--max-body-bytes`` (else 413)
        and complete within ``--body-timeout`` (else 408).

        Handlers read it before taking an admission slot (or a place in the queue): a client
        that sends slowly, or stops, holds nothing that the requests of others need.
        """
        limit = self.settings.max_body_bytes
        declared, content_type = b"", None
        # The raw header list: building request.headers costs more than this scan.
        for name, value in request.scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                content_type = value
        check_content_type(content_type)
        if declared.isdigit() and int(declared) > limit:
            raise too_large(int(declared), limit)
        return await self.body_deadlines.read(request.receive, limit)

    def override_timeout(self, request: Request) -> float | None:
        if not request.scope["query_string"]:
            return None
        return parse_timeout(request.query_params.get("timeout"), maximum=self.settings.max_timeout)

    def timeout_for(self, fn: RewardFunction[Any], override: float | None) -> float:
        return override or fn.timeout or self.settings.timeout

    # -- handlers ------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        health = {
            "status": "ok",
            "version": __version__,
            "functions": sorted(self.functions),
            "workers": self.engine.workers,
            "in_flight": self.admission.in_flight,
            "queued": self.admission.queued,
            # What Retry-After is computed from: how long a request holds its slot.
            "slot_seconds": round(self.admission.seconds_per_item, 6),
        }
        sessions = getattr(request.app.state, "env_sessions", None)
        if sessions is not None:  # environments are served (_env_routes.py)
            health["sessions"] = sessions.capacity()
        return json_response(health)

    async def list_functions(self, request: Request) -> Response:
        default = self.settings.timeout
        described = [fn.describe(default_timeout=default) for fn in self.functions.values()]
        return json_response({"functions": described})

    async def evaluate(self, request: Request) -> Response:
        path_name = request.path_params.get("name")
        if path_name is not None and path_name not in self.functions:
            pick_function(self.functions, path_name)  # raises UnknownFunction with the list
        body = await self.read_body(request)
        async with self.admit(request):
            item, body_name = parse_item(parse_json(body))
            fn = pick_function(self.functions, path_name, body_name)
            check_kwargs(item, self.reserved[fn.name], fn.name)
            call = Call(fn, item, self.timeout_for(fn, self.override_timeout(request)))
            (outcome,) = await self.run([call])
        if outcome.status != "ok" or outcome.result is None:
            error = outcome.error or {"message": "no result"}
            raise ERROR_FOR_STATUS[outcome.status](error["message"])
        payload = dict(outcome.result)
        payload["function"] = fn.name
        payload["duration_ms"] = round(outcome.duration_ms, 3)
        return json_response(payload)

    async def batch_evaluate(self, request: Request) -> Response:
        path_name = request.path_params.get("name")
        if path_name is not None and path_name not in self.functions:
            pick_function(self.functions, path_name)
        body = await self.read_body(request)
        async with self.admit(request):
            override = self.override_timeout(request)
            raw_items, body_name = parse_batch(
                parse_json(body), max_items=self.settings.max_batch_items
            )
            default = None
            if path_name or body_name or len(self.functions) == 1:
                default = pick_function(self.functions, path_name, body_name).name
            outcomes: Sequence[Outcome | EncodedOutcome]
            if default is not None and _all_unrouted(raw_items):
                only = self.functions[default]
                timeout = self.timeout_for(only, override)
                # tuple.__new__: RawItem's own __new__ is Python, 0.2 us an item.
                raw = [
                    tuple.__new__(RawItem, (data, f"items.{index}"))
                    for index, data in enumerate(raw_items)
                ]
                outcomes = await self.run_function_encoded(only, raw, timeout)
            else:
                outcomes = await self._run_routed(raw_items, default, override)
        return _results_response(outcomes)

    async def _run_routed(
        self, raw_items: list[Any], default: str | None, override: float | None
    ) -> list[Outcome | EncodedOutcome]:
        """Each item to the function it names (else ``default``); one that cannot be routed
        or validated here gets its ``invalid`` outcome, in its slot."""
        outcomes: list[Outcome | EncodedOutcome | None] = [None] * len(raw_items)
        calls: list[Call] = []
        slots: list[int] = []
        functions = self.functions
        timeouts: dict[str, float] = {}
        for index, raw in enumerate(raw_items):
            where = f"items.{index}"
            try:
                item, item_name = _routed(raw, where)
                name = item_name or default
                fn = functions.get(name) if name is not None else None
                if fn is None:  # the only function, or the error naming those served
                    fn = pick_function(functions, name)
                if isinstance(item, Item):
                    check_kwargs(item, self.reserved[fn.name], fn.name, where)
            except RequestRejected as error:
                # One bad item is reported in its slot; it never fails the others.
                outcomes[index] = failure("invalid", error.message, code=error.code)
                continue
            timeout = timeouts.get(fn.name)
            if timeout is None:
                timeout = timeouts[fn.name] = self.timeout_for(fn, override)
            calls.append(Call(fn, item, timeout))
            slots.append(index)
        for index, outcome in zip(slots, await self.run_encoded(calls), strict=True):
            outcomes[index] = outcome
        return [o for o in outcomes if o is not None]
