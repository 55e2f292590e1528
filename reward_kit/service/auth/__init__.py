"""Pluggable authenticators for the evaluator. Every route but ``GET /health`` needs one.

Modes: ``api-key``, ``google-iam``, ``aws-iam``, ``mtls`` (see docs/auth.md). The Google, AWS
and mTLS modules import their optional dependencies only when built.
"""

from ._api_key import ApiKey, ApiKeyAuthenticator, parse_key_entries
from ._base import Authenticator, Authenticators, AuthMiddleware, FailureLimiter, Identity
from ._config import build_authenticators, uvicorn_tls_options


def tls_protocol_class() -> type:
    """The uvicorn ``http=`` protocol class that exposes client certificates to the app."""
    from ._tls import tls_protocol_class as protocol_class

    return protocol_class()


__all__ = [
    "ApiKey",
    "ApiKeyAuthenticator",
    "AuthMiddleware",
    "Authenticator",
    "Authenticators",
    "FailureLimiter",
    "Identity",
    "build_authenticators",
    "parse_key_entries",
    "tls_protocol_class",
    "uvicorn_tls_options",
]
