"""``rk certs``: a local CA, server and client certificates for ``--auth mtls``."""

from __future__ import annotations

import click

__all__ = ["certs_command"]


@click.group("certs")
def certs_command() -> None:
    """Make certificates for mutual TLS (needs reward-kit[mtls])."""


@certs_command.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--client", "clients", multiple=True, help="Client name (repeat). [client]")
@click.option("--host", "hosts", multiple=True, help="Server name or IP. [localhost, 127.0.0.1]")
@click.option("--org", default="reward-kit", show_default=True, help="Organization (O=).")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3650))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init_command(
    directory: str,
    clients: tuple[str, ...],
    hosts: tuple[str, ...],
    org: str,
    days: int,
    force: bool,
) -> None:
    """Create DIRECTORY/ca.pem, server.pem and NAME.pem, each with a -key.pem (mode 0600)."""
    from ..service.auth import init_certificates

    made = init_certificates(
        directory,
        clients=clients or ("client",),
        hosts=hosts or ("localhost", "127.0.0.1"),
        organization=org,
        days=days,
        overwrite=force,
    )
    click.echo(f"CA:     {made.ca_cert}  (keep {made.ca_key} offline)")
    click.echo(f"server: {made.server_cert} {made.server_key}")
    for name, (cert, key) in made.clients.items():
        click.echo(f"client: {cert} {key}  subject CN={name},O={org}  uri spiffe://{org}/{name}")
    click.echo(
        f"serve:  rk serve rewards.py --auth mtls --ssl-certfile {made.server_cert} "
        f"--ssl-keyfile {made.server_key} --ssl-ca-certs {made.ca_cert}"
    )
