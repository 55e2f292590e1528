"""What every command shares: target loading and turning our errors into one clear line."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from .._errors import RewardKitError
from .._function import RewardFunction
from .._loader import load_functions

__all__ = ["cwd_importable", "fail", "load_targets", "run_command"]


def run_command(command: click.Command) -> None:
    """Run a click command; a RewardKitError becomes ``error: <message>`` and exit code 1."""
    try:
        command.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except RewardKitError as error:
        click.secho(f"error: {error.message}", fg="red", err=True)
        sys.exit(1)


def fail(message: str) -> RewardKitError:
    return RewardKitError(message)


def load_targets(
    targets: tuple[str, ...], *, allow_none: bool = False
) -> dict[str, RewardFunction[Any]]:
    cwd_importable()
    return load_functions(targets, allow_none=allow_none)


def cwd_importable() -> None:
    """Console scripts put their own folder first on sys.path, not the current one; like
    uvicorn's --app-dir default, make `pkg.mod:fn` targets in the current folder importable."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
