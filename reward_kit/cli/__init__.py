"""The ``rk`` command line (and ``rk-serve``, the same as ``rk serve``)."""

from __future__ import annotations

import click

from .._version import __version__
from ._build import build_command
from ._certs import certs_command
from ._common import run_command
from ._deploy import deploy_group
from ._eval import eval_command
from ._fireworks import fireworks_command
from ._functions import functions_command
from ._keys import keys_command
from ._run import cache_group
from ._run import run_command as rk_run_command  # _common.run_command runs a command
from ._serve import serve_command
from ._view import view_command

__all__ = ["cli", "main", "serve_main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reward-kit")
def cli() -> None:
    """reward-kit: author, evaluate, serve and deploy reward functions."""


cli.add_command(serve_command)
cli.add_command(keys_command)
cli.add_command(certs_command)
cli.add_command(eval_command)
cli.add_command(functions_command)
cli.add_command(fireworks_command)
cli.add_command(build_command)
cli.add_command(deploy_group)
cli.add_command(rk_run_command)
cli.add_command(cache_group)
cli.add_command(view_command)


def main() -> None:
    run_command(cli)


def serve_main() -> None:
    run_command(serve_command)
