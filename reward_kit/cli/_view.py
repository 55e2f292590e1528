"""``rk view``: serve runs on loopback (or export them as one HTML file); docs/view.md."""

from __future__ import annotations

import click

from .._errors import ConfigurationError

__all__ = ["view_command"]


@click.command("view")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--export", "export_path", type=click.Path(dir_okay=False),
              help="Write one self-contained HTML file instead of serving.")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=0, type=click.IntRange(0, 65535), help="Port [default: a free one]."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --host (the viewer has no authentication).")  # fmt: skip
def view_command(
    paths: tuple[str, ...],
    export_path: str | None,
    host: str,
    port: int,
    open_browser: bool,
    allow_remote: bool,
) -> None:
    """Look at runs: PATHS are rk run directories or rk eval results files (two or more are
    compared prompt by prompt)."""
    from ..view import export_html, load_run, serve

    runs = [load_run(path) for path in paths]
    if export_path is not None:
        if open_browser:
            raise ConfigurationError("--open: an export is a file; open it yourself")
        written = export_html(runs, export_path)
        click.echo(f"rk view: wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")
        return
    serve(runs, host=host, port=port, allow_remote=allow_remote, open_browser=open_browser,
          announce=click.echo)  # fmt: skip
