"""``rk functions TARGET...``: what a target exposes."""

from __future__ import annotations

import json

import click

from ._common import load_targets

__all__ = ["functions_command"]


@click.command("functions")
@click.argument("targets", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def functions_command(targets: tuple[str, ...], as_json: bool) -> None:
    """List the reward functions TARGETS expose (file.py, file.py:fn, pkg.mod:fn, pkg.mod.fn)."""
    functions = load_targets(targets)
    described = [fn.describe() for fn in functions.values()]
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for info in described:
        timeout = f"{info['timeout']:g}s" if info["timeout"] else "server default"
        summary = info["docstring"].splitlines()[0] if info["docstring"] else ""
        click.echo(
            f"{info['name']}  [{info['mode']}, {info['isolation']}, timeout {timeout}]"
            + (f"  {summary}" if summary else "")
        )
