"""``rk serve`` / ``rk-serve``: serve reward functions over HTTP."""

from __future__ import annotations

import asyncio
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
@click.option(
    "--workers",
    type=int,
    help="Worker processes [default: one per core]; 0 runs rewards in threads (AWS Lambda).",
)
@click.option("--timeout", type=float, help="Default deadline per item, seconds. [default: 30]")
@click.option("--max-timeout", type=float, help="Largest ?timeout= a request may ask. [300]")
@click.option("--max-body-bytes", type=int, help="Largest request body. [16 MiB]")
@click.option("--max-batch-items", type=int, help="Most items in one batch. [10000]")
@click.option("--max-in-flight", type=int, help="Concurrent requests before 429. [64]")
@click.option("--memory-limit-mb", type=int, help="Address-space limit per worker (MiB).")
@click.option("--api-key-file", help="File of API keys ('ID KEY' or 'ID sha256:HEX' lines).")
@click.option(
    "--auth",
    callback=lambda _ctx, _param, value: _split(value),
    help="Auth modes, comma-separated: api-key, google-iam, aws-iam, mtls. [env RK_AUTH; "
    "default: api-key when keys are given]",
)
@click.option("--google-audience", "google_audiences", multiple=True, help="Accepted ID-token aud.")
@click.option("--google-certs-url", help="Google signing keys (JWKS or PEM map) URL.")
@click.option("--google-allow-email", "google_allowed_emails", multiple=True, help="Allowed email.")
@click.option("--aws-allow-arn", "aws_allowed_arns", multiple=True, help="Allowed caller ARN glob.")
@click.option("--aws-sts-endpoint", help="STS endpoint to verify tokens with (tests, VPC).")
@click.option("--aws-server-id", help="Value clients must sign as X-RK-Server-ID.")
@click.option("--ssl-certfile", help="Server certificate (PEM); turns on HTTPS.")
@click.option("--ssl-keyfile", help="Server private key (PEM).")
@click.option("--ssl-ca-certs", help="CA bundle that signs client certificates (mtls).")
@click.option("--mtls-allow-subject", "mtls_allowed_subjects", multiple=True, help="Subject glob.")
@click.option("--mtls-allow-uri", "mtls_allowed_uris", multiple=True, help="SAN URI glob.")
@click.option(
    "--auth-failure-limit",
    type=int,
    help="Failed attempts per address per window before 429 (0 = off). [20]",
)
@click.option("--auth-failure-window", type=float, help="Window for --auth-failure-limit, s. [60]")
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
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="json: one object per line with request_id and identity. [default: text]",
)
@click.option(
    "--metrics/--no-metrics",
    default=None,
    help="Serve Prometheus metrics at /metrics (behind auth). [default: on]",
)
@click.option(
    "--shutdown-grace",
    type=float,
    help="Seconds in-flight requests get to finish after SIGTERM. [default: 8]",
)
def serve_command(targets: tuple[str, ...], **flags: Any) -> None:
    """Serve the reward functions in TARGETS (file.py, file.py:fn, pkg.mod:fn, pkg.mod.fn).

    Every option can also be set as an RK_* environment variable (RK_PORT, RK_WORKERS,
    RK_API_KEYS, RK_API_KEYS_FILE...); a flag wins over the environment.
    """
    require("fastapi", extra="server", feature="rk serve")
    uvicorn = require("uvicorn", extra="server", feature="rk serve")
    from ..service import ServeSettings, create_app
    from ..service._observability import configure_logging
    from ..service.auth import uvicorn_tls_options

    settings = ServeSettings.resolve({"targets": targets, **flags}, os.environ)
    if not settings.targets:
        raise click.UsageError("give at least one target, e.g. rk serve rewards.py")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    functions = load_targets(settings.targets)
    app = create_app(functions=functions, settings=settings)
    # Start the workers now, in this process, so a reward that cannot load or set up stops
    # the command with one clear line instead of a lifespan traceback; the app's lifespan
    # finds the engine started and owns its shutdown.
    asyncio.run(app.state.service.engine.start())
    tls = uvicorn_tls_options(settings)
    _print_hint(settings, sorted(functions))
    # uvicorn shuts down gracefully on SIGTERM, then restores this handler and re-raises the
    # signal: a graceful stop (Cloud Run, docker stop) should end with status 0, not -15.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # keep the logging configured above (JSON, request ids)
        timeout_graceful_shutdown=settings.shutdown_grace,
        **tls,
    )


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


_CURL_AUTH = {
    "api-key": ' -H "Authorization: Bearer $RK_API_KEY"',
    "google-iam": ' -H "Authorization: Bearer $(gcloud auth print-identity-token)"',
    "mtls": " --cert client.pem --key client-key.pem --cacert ca.pem",
}


def _print_hint(settings: Any, names: list[str]) -> None:
    host, port = settings.host, settings.port
    scheme = "https" if settings.ssl_certfile else "http"
    base = f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    modes = settings.auth_modes
    auth = next((_CURL_AUTH[m] for m in modes if m in _CURL_AUTH), "")
    if modes:
        click.echo(f"reward-kit: auth {', '.join(modes)} (only GET /health is open)")
    click.echo(f"reward-kit: serving {', '.join(names)} on {base}")
    click.echo(
        f"  try: curl -s {base}/evaluate/{names[0]}{auth} -H 'content-type: application/json' \\"
    )
    click.echo(f"         -d '{_EXAMPLE_BODY}'")
