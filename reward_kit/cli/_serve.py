"""``rk serve`` / ``rk-serve``: serve reward functions over HTTP."""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

import click

from .._extras import require
from ._common import load_targets

__all__ = ["serve_command"]

_EXAMPLE_BODY = '{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], "ground_truth": "4"}'  # noqa: E501


@click.command("serve")
@click.argument("targets", nargs=-1)
@click.option("--host", help="Address to bind. [default: 127.0.0.1; env RK_HOST]")
@click.option("--port", type=int, help="Port. [default: 8000; env RK_PORT]")
@click.option("--workers", type=int, help="Worker processes. [default: one per core]")
@click.option("--timeout", type=float, help="Default deadline per item, seconds. [default: 30]")
@click.option("--max-timeout", type=float, help="Largest ?timeout= a request may ask. [300]")
@click.option("--max-body-bytes", type=int, help="Largest request body. [16 MiB]")
@click.option("--max-batch-items", type=int, help="Most items in one batch. [10000]")
@click.option("--max-in-flight", type=int, help="Concurrent requests before 429. [64]")
@click.option("--memory-limit-mb", type=int, help="Address-space limit per worker (MiB).")
@click.option("--api-key-file", help="File of API keys ('ID KEY' or 'ID sha256:HEX' lines).")
@click.option(
    "--allow-unauthenticated",
    is_flag=True,
    default=None,
    help="Allow a non-loopback bind with no auth (something in front must do it).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="[default: info]",
)
def serve_command(targets: tuple[str, ...], **flags: Any) -> None:
    """Serve the reward functions in TARGETS (file.py, file.py:fn, pkg.mod:fn, pkg.mod.fn).

    Every option can also be set as an RK_* environment variable (RK_PORT, RK_WORKERS,
    RK_API_KEYS, RK_API_KEYS_FILE...); a flag wins over the environment.
    """
    require("fastapi", extra="server", feature="rk serve")
    uvicorn = require("uvicorn", extra="server", feature="rk serve")
    from ..service import ServeSettings, create_app

    settings = ServeSettings.resolve({"targets": targets, **flags}, os.environ)
    if not settings.targets:
        raise click.UsageError("give at least one target, e.g. rk serve rewards.py")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    functions = load_targets(settings.targets)
    app = create_app(functions=functions, settings=settings)
    _print_hint(settings.host, settings.port, sorted(functions), bool(app.user_middleware))
    # uvicorn shuts down gracefully on SIGTERM, then restores this handler and re-raises the
    # signal: a graceful stop (Cloud Run, docker stop) should end with status 0, not -15.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)


def _print_hint(host: str, port: int, names: list[str], has_auth: bool) -> None:
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    auth = ' -H "Authorization: Bearer $RK_API_KEY"' if has_auth else ""
    click.echo(f"reward-kit: serving {', '.join(names)} on {base}")
    header = "-H 'content-type: application/json'"
    click.echo(f"  try: curl -s {base}/evaluate/{names[0]}{auth} {header} \\")
    click.echo(f"         -d '{_EXAMPLE_BODY}'")
