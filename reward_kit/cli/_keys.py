"""``rk keys``: make API keys for ``--auth api-key``."""

from __future__ import annotations

import hashlib
import re
import secrets

import click

__all__ = ["generate_key", "keys_command"]


def generate_key(key_id: str | None = None) -> tuple[str, str]:
    """A new random key and its server line ``ID sha256:HEX`` (the server never needs the key).

    >>> key, line = generate_key("trainer-a")
    >>> line.split()[0], line.split()[1][:7], key[:3]
    ('trainer-a', 'sha256:', 'rk_')
    """
    key = "rk_" + secrets.token_urlsafe(32)
    digest = hashlib.sha256(key.encode()).hexdigest()
    return key, f"{key_id or 'key-' + digest[:8]} sha256:{digest}"


@click.group("keys")
def keys_command() -> None:
    """Manage API keys for `rk serve --auth api-key`."""


@keys_command.command("generate")
@click.option("--id", "key_id", help="Name shown in the server log for this key.")
def generate_command(key_id: str | None) -> None:
    """Print a new API key and the line to add to the server's key file.

    The key goes to the client (RK_API_KEY or auth.ini); the 'ID sha256:HEX' line goes into
    the file named by --api-key-file / RK_API_KEYS_FILE. Several lines may be valid at once,
    which is how keys are rotated.
    """
    if key_id is not None and not re.fullmatch(r"[A-Za-z0-9_.@:-]{1,64}", key_id):
        raise click.BadParameter(
            "use letters, digits and _ . @ : - (at most 64)", param_hint="--id"
        )
    key, line = generate_key(key_id)
    click.echo("# API key for the client (export RK_API_KEY=...; shown once, not stored):")
    click.echo(key)
    click.echo("# line for the server's key file (--api-key-file / RK_API_KEYS_FILE):")
    click.echo(line)
