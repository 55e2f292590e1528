"""Turn settings into the list of authenticators (the one place auth is configured)."""

from __future__ import annotations

from ..._errors import ConfigurationError
from .._settings import ServeSettings
from ._api_key import ApiKeyAuthenticator, parse_key_entries
from ._base import Authenticator

__all__ = ["build_authenticators"]


def build_authenticators(settings: ServeSettings) -> list[Authenticator]:
    """Authenticators for these settings; refuses an open non-loopback bind."""
    authenticators: list[Authenticator] = []
    keys = parse_key_entries(settings.api_keys, origin="RK_API_KEYS")
    if settings.api_key_file:
        keys += ApiKeyAuthenticator.from_file(settings.api_key_file).keys
    if keys:
        authenticators.append(ApiKeyAuthenticator(keys=keys))
    if not authenticators and not settings.is_loopback and not settings.allow_unauthenticated:
        raise ConfigurationError(
            f"refusing to serve on {settings.host} without authentication: anyone who can reach "
            "it could run your reward code. Configure API keys (--api-key-file or RK_API_KEYS), "
            "or pass --allow-unauthenticated if something in front of it does auth."
        )
    return authenticators
