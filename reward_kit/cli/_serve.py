"""``rk serve`` / ``rk-serve``: serve reward functions over HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._extras import require
from ..service import ServeSettings, Setting
from ._common import load_targets

__all__ = ["serve_command"]

_F = TypeVar("_F", bound=Callable[..., Any])
_EXAMPLE_BODY = '{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], "ground_truth": "4"}'  # noqa: E501


def _parsed(spec: Setting) -> Callable[[click.Context, click.Parameter, str | None], Any]:
    """A callback that reads a flag's value with its setting's own parser, so a flag and its
    ``RK_*`` variable accept and refuse the same values (``--timeout 0`` as ``RK_TIMEOUT=0``)."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        try:
            return spec.parse(value)
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None

    return parse


def _help(spec: Setting) -> str:
    where = f"default: {spec.shown}; env {spec.env}" if spec.shown else f"env {spec.env}"
    return f"{spec.description}  [{where}]"


def _parameter(spec: Setting) -> Callable[[_F], _F]:
    """The click argument or option of one ``ServeSettings`` field."""
    if spec.kind == "arguments":
        return click.argument(spec.name, nargs=-1)
    assert spec.flag is not None
    # None, not False or (), when a flag is not given: the RK_* variable then applies.
    common: dict[str, Any] = {"help": _help(spec), "default": None}
    if spec.kind == "switch":
        return click.option(f"{spec.flag}/--no-{spec.flag[2:]}", spec.name, **common)
    if spec.kind == "flag":
        return click.option(spec.flag, spec.name, is_flag=True, **common)
    if spec.kind == "repeat":
        return click.option(spec.flag, spec.name, multiple=True, metavar=spec.metavar, **common)
    return click.option(
        spec.flag, spec.name, callback=_parsed(spec), metavar=spec.metavar, **common
    )


def _settings_parameters(command: _F) -> _F:
    for spec in reversed(ServeSettings.describe()):
        if spec.flag is not None or spec.kind == "arguments":
            command = _parameter(spec)(command)
    return command


def _environment_only() -> str:
    lines = [
        f"  {spec.env}: {spec.description}  [default: {spec.shown}]"
        for spec in ServeSettings.describe()
        if spec.flag is None and spec.kind != "arguments"
    ]
    # \b keeps click from rewrapping the lines into one paragraph.
    return "\b\nOnly in the environment:\n" + "\n".join(lines)


@click.command("serve", epilog=_environment_only())
@_settings_parameters
def serve_command(targets: tuple[str, ...], **flags: Any) -> None:
    """Serve the reward functions in TARGETS (file.py, file.py:fn, pkg.mod:fn, pkg.mod.fn).

    Every setting is also an RK_* environment variable (RK_PORT, RK_WORKERS, RK_API_KEYS,
    RK_API_KEYS_FILE...); a flag wins over the environment. docs/http-api.md#settings lists
    them all.
    """
    require("fastapi", extra="server", feature="rk serve")
    require("uvicorn", extra="server", feature="rk serve")
    from ..service import configure_logging, create_app, run_server

    settings = ServeSettings.resolve({"targets": targets, **flags}, os.environ)
    if not settings.targets:
        raise click.UsageError("give at least one target, e.g. rk serve rewards.py")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    # Targets may define environments only (docs/environments.md); create_app refuses none.
    functions = load_targets(settings.targets, allow_none=True)
    app = create_app(functions=functions, settings=settings)
    run_server(app, announce=lambda: _print_hint(settings, sorted(functions)))


_CURL_AUTH = {
    "api-key": ' -H "Authorization: Bearer $RK_API_KEY"',
    "google-iam": ' -H "Authorization: Bearer $(gcloud auth print-identity-token)"',
    "mtls": " --cert client.pem --key client-key.pem --cacert ca.pem",
}


def _print_hint(settings: ServeSettings, names: list[str]) -> None:
    if settings.log_format == "json":  # read by machines: one JSON record per line, no banner
        return
    host, port = settings.host, settings.port
    scheme = "https" if settings.ssl_certfile else "http"
    base = f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    modes = settings.auth_modes
    auth = next((_CURL_AUTH[m] for m in modes if m in _CURL_AUTH), "")
    if modes:
        click.echo(f"reward-kit: auth {', '.join(modes)} (only GET /health is open)")
    if not names:
        click.echo(f"reward-kit: serving environments on {base} (list them: GET {base}/envs)")
        return
    click.echo(f"reward-kit: serving {', '.join(names)} on {base}")
    click.echo(
        f"  try: curl -s {base}/evaluate/{names[0]}{auth} -H 'content-type: application/json' \\"
    )
    click.echo(f"         -d '{_EXAMPLE_BODY}'")
