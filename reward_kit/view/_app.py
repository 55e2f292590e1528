"""The viewer's web app: a static page and the JSON it asks for, filtered server-side.

Only loopback Host headers are answered unless the server was told to accept others (a page
on another site could otherwise reach a loopback server through DNS rebinding and read the
run), and every answer forbids framing, sniffing and scripts from anywhere but this server.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import RequestRejected
from .._extras import require
from ._compare import compare
from ._load import Run
from ._overview import overview
from ._query import query_samples

__all__ = ["CSP", "STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"
# uPlot sets element styles from script, hence 'unsafe-inline' for styles only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]").split("]")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def create_app(runs: Sequence[Run], *, any_host: bool = False) -> Any:
    """A Starlette app serving ``runs``; ``any_host`` answers Host headers that are not
    loopback (for a deliberate non-loopback bind)."""
    require("starlette", extra="view", feature="rk view")
    orjson = require("orjson", extra="view", feature="rk view")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.types import ASGIApp, Receive, Scope, Send

    def json_response(value: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(value), status_code=status, media_type="application/json")

    def run_at(request: Request, key: str = "run") -> Run:
        index: int = request.path_params[key]
        if not 0 <= index < len(runs):
            raise RequestRejected(f"{key}: no run {index} (there are {len(runs)})", code="no_run")
        return runs[index]

    @functools.lru_cache(maxsize=64)
    def cached_overview(index: int) -> dict[str, Any]:
        return overview(runs[index])

    @functools.lru_cache(maxsize=16)
    def cached_compare(a: int, b: int) -> dict[str, Any]:
        return compare(runs[a], runs[b])

    def sample(run: Run, position: int) -> dict[str, Any]:
        return {"id": position, "row": run.rows[position]}

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def list_runs(request: Request) -> Response:
        return json_response([
            {"id": i, "name": r.name, "kind": r.kind, "samples": len(r.rows),
             "prompts": len(r.by_prompt), "rewards": r.rewards}
            for i, r in enumerate(runs)
        ])  # fmt: skip

    async def run_overview(request: Request) -> Response:
        run_at(request)
        return json_response(cached_overview(request.path_params["run"]))

    async def samples(request: Request) -> Response:
        return json_response(query_samples(run_at(request), request.query_params))

    async def one_sample(request: Request) -> Response:
        run, position = run_at(request), request.path_params["sample"]
        if not 0 <= position < len(run.rows):
            raise RequestRejected(f"sample: no sample {position} in this run", code="no_sample")
        return json_response(sample(run, position))

    async def prompt(request: Request) -> Response:
        run, prompt_id = run_at(request), request.query_params.get("id", "")
        positions = run.by_prompt.get(prompt_id, [])
        return json_response({"prompt_id": prompt_id, "samples": [sample(run, p) for p in
                                                                  positions]})  # fmt: skip

    async def compared(request: Request) -> Response:
        run_at(request, "a"), run_at(request, "b")
        return json_response(cached_compare(request.path_params["a"], request.path_params["b"]))

    async def compared_prompt(request: Request) -> Response:
        a, b = run_at(request, "a"), run_at(request, "b")
        prompt_id = request.query_params.get("id", "")
        return json_response({
            "prompt_id": prompt_id,
            "a": [sample(a, p) for p in a.by_prompt.get(prompt_id, [])],
            "b": [sample(b, p) for p in b.by_prompt.get(prompt_id, [])],
        })  # fmt: skip

    async def rejected(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestRejected)
        return json_response({"error": {"code": error.code, "message": str(error)}}, 400)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/runs", list_runs),
            Route("/api/runs/{run:int}/overview", run_overview),
            Route("/api/runs/{run:int}/samples", samples),
            Route("/api/runs/{run:int}/samples/{sample:int}", one_sample),
            Route("/api/runs/{run:int}/prompt", prompt),
            Route("/api/compare/{a:int}/{b:int}", compared),
            Route("/api/compare/{a:int}/{b:int}/prompt", compared_prompt),
            Mount("/static", StaticFiles(directory=STATIC)),
        ],
        exception_handlers={RequestRejected: rejected},
    )

    def guarded(inner: ASGIApp) -> ASGIApp:
        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not any_host and not _loopback(host):
                refusal = PlainTextResponse("rk view answers loopback hosts only", 421)
                await refusal(scope, receive, send)
                return

            async def send_with_headers(message: Any) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    headers += [(k.encode(), v.encode()) for k, v in _HEADERS.items()]
                    message = {**message, "headers": headers}
                await send(message)

            await inner(scope, receive, send_with_headers)

        return asgi

    return guarded(app)
