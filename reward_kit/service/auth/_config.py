"""Turn settings into authenticators and TLS options (the one place auth is configured)."""

from __future__ import annotations

import ssl
from typing import Any

from ..._errors import ConfigurationError
from .._settings import ServeSettings
from ._api_key import ApiKeyAuthenticator, parse_key_entries
from ._base import Authenticator, Authenticators

__all__ = ["build_authenticators", "uvicorn_tls_options"]


def _api_key(settings: ServeSettings) -> Authenticator:
    keys = parse_key_entries(settings.api_keys, origin="RK_API_KEYS")
    if settings.api_key_file:
        keys += ApiKeyAuthenticator.from_file(settings.api_key_file).keys
    if not keys:
        raise ConfigurationError(
            "api-key auth needs keys: --api-key-file FILE, RK_API_KEYS_FILE or RK_API_KEYS "
            "(make one with `rk keys generate`). RK_API_KEY and RK_API_KEY_FILE, singular, "
            "are a client's own key; the server reads the plural RK_API_KEYS and "
            "RK_API_KEYS_FILE"
        )
    return ApiKeyAuthenticator(keys=keys)


def _google(settings: ServeSettings) -> Authenticator:
    from ._google import GoogleIamAuthenticator

    return GoogleIamAuthenticator(
        audiences=settings.google_audiences,
        certs_url=settings.google_certs_url,
        issuers=settings.google_issuers,
        allowed_emails=settings.google_allowed_emails,
    )


def _aws(settings: ServeSettings) -> Authenticator:
    from ._aws import AwsIamAuthenticator

    return AwsIamAuthenticator(
        allowed_arns=settings.aws_allowed_arns,
        sts_endpoint=settings.aws_sts_endpoint,
        server_id=settings.aws_server_id,
    )


def _mtls(settings: ServeSettings) -> Authenticator:
    from ._mtls import MutualTlsAuthenticator

    missing = [
        flag
        for flag, value in (
            ("--ssl-certfile", settings.ssl_certfile),
            ("--ssl-keyfile", settings.ssl_keyfile),
            ("--ssl-ca-certs", settings.ssl_ca_certs),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(
            f"mtls auth needs --ssl-certfile, --ssl-keyfile and --ssl-ca-certs (the CA that "
            f"signs client certificates); missing: {', '.join(missing)}. "
            "`rk certs init DIR` makes a set"
        )
    return MutualTlsAuthenticator(
        allowed_subjects=settings.mtls_allowed_subjects, allowed_uris=settings.mtls_allowed_uris
    )


_BUILDERS = {"api-key": _api_key, "google-iam": _google, "aws-iam": _aws, "mtls": _mtls}


def build_authenticators(settings: ServeSettings) -> Authenticators:
    """Authenticators for ``settings.auth_modes``, in that order; refuses an open public bind.

    >>> [a.mode for a in build_authenticators(ServeSettings(api_keys=("k" * 16,)))]
    ['api-key']
    """
    authenticators = Authenticators(
        (_BUILDERS[mode](settings) for mode in settings.auth_modes),
        failure_limit=settings.auth_failure_limit,
        failure_window=settings.auth_failure_window,
    )
    if not authenticators and not settings.is_loopback and not settings.allow_unauthenticated:
        raise ConfigurationError(
            f"refusing to serve on {settings.host} without authentication: anyone who can reach "
            "it could run your reward code. Choose --auth (api-key, google-iam, aws-iam, mtls), "
            "or pass --allow-unauthenticated if something in front of it does auth."
        )
    return authenticators


def uvicorn_tls_options(settings: ServeSettings) -> dict[str, Any]:
    """``uvicorn.run``/``Config`` keywords for TLS: files, client-cert policy, TLS protocol.

    In mtls-only mode a client certificate is required in the handshake; combined with other
    modes it is optional (a client may prove itself another way), but any certificate sent is
    still verified against the CA.
    """
    if not settings.ssl_certfile:
        return {}
    from ._tls import tls_protocol_class

    modes = settings.auth_modes
    if "mtls" not in modes:
        reqs = ssl.CERT_NONE
    else:
        reqs = ssl.CERT_REQUIRED if modes == ("mtls",) else ssl.CERT_OPTIONAL
    return {
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
        "ssl_ca_certs": settings.ssl_ca_certs,
        "ssl_cert_reqs": reqs,
        "http": tls_protocol_class(),
    }
