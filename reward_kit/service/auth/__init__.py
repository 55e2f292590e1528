"""Pluggable authenticators for the evaluator. Every route but ``GET /health`` needs one.

Modes: ``api-key``, ``google-iam``, ``aws-iam``, ``mtls`` (see docs/auth.md). The Google, AWS
and mTLS modules import their optional dependencies only when built, as does
``init_certificates`` (a small CA for mTLS, behind ``rk certs init``).
"""

from ._api_key import ApiKeyAuthenticator, ApiKeyEntry, parse_key_entries
from ._base import Authenticator, Authenticators, AuthMiddleware, FailureLimiter, Identity
from ._config import build_authenticators, uvicorn_tls_options
from ._pki import CertificateSet, init_certificates


def tls_protocol_class() -> type:
    """The uvicorn ``http=`` protocol class that exposes client certificates to the app."""
    from ._tls import tls_protocol_class as protocol_class

    return protocol_class()


__all__ = [
    "ApiKeyAuthenticator",
    "ApiKeyEntry",
    "AuthMiddleware",
    "Authenticator",
    "Authenticators",
    "CertificateSet",
    "FailureLimiter",
    "Identity",
    "build_authenticators",
    "init_certificates",
    "parse_key_entries",
    "tls_protocol_class",
    "uvicorn_tls_options",
]


def __getattr__(name: str) -> object:
    # ApiKey was this module's name for a stored key entry, which read as the SDK's ApiKey
    # credential; kept for code written before the rename.
    if name == "ApiKey":
        import warnings

        warnings.warn(
            "reward_kit.service.auth.ApiKey is now ApiKeyEntry (reward_kit.sdk.ApiKey is the "
            "client credential)",
            DeprecationWarning,
            stacklevel=2,
        )
        return ApiKeyEntry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
