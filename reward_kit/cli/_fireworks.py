"""``rk fireworks shim`` / ``rk fireworks register``: run a reward-kit evaluator from Fireworks.

The shim and the upload are ``reward_kit.sdk.fireworks``'s; this is their command line.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from .._errors import ConfigurationError

__all__ = ["fireworks_command"]


@click.group("fireworks")
def fireworks_command() -> None:
    """Score Fireworks RFT samples with a reward-kit evaluator."""


_url = click.option("--url", required=True, help="Base URL of the evaluator (rk-serve).")
_function = click.option("--function", required=True, help="Reward function name to call.")
_key_env = click.option(
    "--api-key-env",
    default="RK_API_KEY",
    show_default=True,
    help="Environment variable holding the evaluator's API key in Fireworks' runtime "
    "(a Fireworks secret). Empty string: send no key.",
)
_timeout = click.option("--timeout", type=float, default=60.0, show_default=True)


@fireworks_command.command("shim")
@_url
@_function
@_key_env
@_timeout
@click.option("-o", "--output", default="-", show_default=True, help="File to write; - = stdout.")
def shim_command(url: str, function: str, api_key_env: str, timeout: float, output: str) -> None:
    """Write the evaluator main.py that Fireworks runs."""
    # The SDK (httpx and all) only when this command runs: every `rk` start would pay for it.
    from ..sdk.fireworks import render_shim

    text = render_shim(url=url, function=function, api_key_env=api_key_env, timeout=timeout)
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text)
        click.echo(f"wrote {output}", err=True)


@fireworks_command.command("register")
@click.option("--id", "evaluator_id", required=True, help="Fireworks evaluator id.")
@_url
@_function
@_key_env
@_timeout
@click.option("--display-name", help="[default: the id]")
@click.option("--description", default="", help="Shown in the Fireworks UI.")
def register_command(
    evaluator_id: str,
    url: str,
    function: str,
    api_key_env: str,
    timeout: float,
    display_name: str | None,
    description: str,
) -> None:
    """Upload the shim as a Fireworks evaluator (FIREWORKS_API_KEY, FIREWORKS_ACCOUNT_ID,
    FIREWORKS_API_BASE)."""
    from ..sdk.fireworks import DEFAULT_API_BASE, register_evaluator, render_shim

    key, account = os.environ.get("FIREWORKS_API_KEY"), os.environ.get("FIREWORKS_ACCOUNT_ID")
    if not key or not account:
        raise ConfigurationError("set FIREWORKS_API_KEY and FIREWORKS_ACCOUNT_ID")
    base = os.environ.get("FIREWORKS_API_BASE") or DEFAULT_API_BASE
    code = render_shim(url=url, function=function, api_key_env=api_key_env, timeout=timeout)
    name = register_evaluator(
        evaluator_id=evaluator_id,
        url=url,
        function=function,
        code=code,
        account=account,
        api_key=key,
        api_base=base,
        display_name=display_name,
        description=description,
    )
    click.echo(f"registered {name}")
    if api_key_env:
        click.echo(
            f"remember: create the Fireworks secret {api_key_env} holding the evaluator's key",
            err=True,
        )
