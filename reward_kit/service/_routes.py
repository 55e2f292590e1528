"""HTTP handlers: health, function listing, /evaluate (and /reward), /batch_evaluate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .._errors import (
    Overloaded,
    RequestRejected,
    RewardKitError,
)
from .._function import RewardFunction
from .._version import __version__
from .._vocabulary import ERROR_FOR_STATUS
from ..engine import (
    Call,
    Engine,
    Outcome,
    check_kwargs,
    failure,
    parse_batch,
    parse_item,
    parse_json,
    reserved_kwargs,
)
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


class Service:
    """The state the handlers share: functions, engine, settings and the in-flight count."""

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
        self.in_flight = 0
        self.reserved = {name: reserved_kwargs(fn) for name, fn in self.functions.items()}
        self.body_deadlines = BodyDeadlines(settings.body_timeout)
        if metrics is not None:
            # Read when scraped, so admitting a request costs nothing extra.
            metrics.track_in_flight(lambda: self.in_flight)

    def admit(self) -> _Admission:
        """``with service.admit():`` counts a request in flight, or refuses it with a 429."""
        return _Admission(self)

    async def run(self, calls: list[Call]) -> list[Outcome]:
        """Evaluate through the engine and count the outcomes per function."""
        outcomes = await self.engine.run(calls)
        if self.metrics is not None and len(calls) == 1:
            self.metrics.observe_outcomes(calls[0].function.name, outcomes)
        elif self.metrics is not None:
            by_function: dict[str, list[Outcome]] = {}
            for call, outcome in zip(calls, outcomes, strict=True):
                by_function.setdefault(call.function.name, []).append(outcome)
            for name, group in by_function.items():
                self.metrics.observe_outcomes(name, group)
        return outcomes

    async def render_metrics(self, request: Request) -> Response:
        assert self.metrics is not None
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def read_body(self, request: Request) -> bytes:
        """The request body, declared JSON (else 415), at most ``--max-body-bytes`` (else 413)
        and complete within ``--body-timeout`` (else 408).

        Handlers read it before taking an admission slot: a client that sends slowly, or
        stops, holds no slot that the requests of others need.
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
        return json_response(
            {
                "status": "ok",
                "version": __version__,
                "functions": sorted(self.functions),
                "workers": self.engine.workers,
                "in_flight": self.in_flight,
            }
        )

    async def list_functions(self, request: Request) -> Response:
        default = self.settings.timeout
        described = [fn.describe(default_timeout=default) for fn in self.functions.values()]
        return json_response({"functions": described})

    async def evaluate(self, request: Request) -> Response:
        path_name = request.path_params.get("name")
        if path_name is not None and path_name not in self.functions:
            pick_function(self.functions, path_name)  # raises UnknownFunction with the list
        body = await self.read_body(request)
        with self.admit():
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
        with self.admit():
            override = self.override_timeout(request)
            raw_items, body_name = parse_batch(
                parse_json(body), max_items=self.settings.max_batch_items
            )
            default = None
            if path_name or body_name or len(self.functions) == 1:
                default = pick_function(self.functions, path_name, body_name).name
            outcomes: list[Outcome | None] = [None] * len(raw_items)
            calls: list[Call] = []
            slots: list[int] = []
            for index, raw in enumerate(raw_items):
                try:
                    item, item_name = parse_item(raw, f"items.{index}")
                    fn = pick_function(self.functions, item_name or default)
                    check_kwargs(item, self.reserved[fn.name], fn.name, f"items.{index}")
                except RequestRejected as error:
                    # One bad item is reported in its slot; it never fails the others.
                    outcomes[index] = failure("invalid", error.message, code=error.code)
                    continue
                calls.append(Call(fn, item, self.timeout_for(fn, override)))
                slots.append(index)
            for index, outcome in zip(slots, await self.run(calls), strict=True):
                outcomes[index] = outcome
        results = [o.to_json(i) for i, o in enumerate(outcomes) if o is not None]
        return json_response({"results": results})


class _Admission:
    # A class rather than @contextmanager: the generator version cost ~1 us a request.
    __slots__ = ("service",)

    def __init__(self, service: Service) -> None:
        self.service = service

    def __enter__(self) -> None:
        service = self.service
        # One event loop thread: a plain counter is race-free.
        if service.in_flight >= service.settings.max_in_flight:
            raise Overloaded(
                f"{service.in_flight} requests are being evaluated, the limit of this server "
                "(--max-in-flight); retry shortly",
                retry_after=1,
            )
        service.in_flight += 1

    def __exit__(self, *exc: object) -> None:
        self.service.in_flight -= 1
