"""Pluggable authenticators for the evaluator. Every route but ``GET /health`` needs one."""

from ._api_key import ApiKey, ApiKeyAuthenticator, parse_key_entries
from ._base import Authenticator, AuthMiddleware, Identity
from ._config import build_authenticators

__all__ = [
    "ApiKey",
    "ApiKeyAuthenticator",
    "AuthMiddleware",
    "Authenticator",
    "Identity",
    "build_authenticators",
    "parse_key_entries",
]
