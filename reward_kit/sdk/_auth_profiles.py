"""Credentials from the environment or from ``auth.ini`` profiles.

``auth.ini`` (``RK_AUTH_FILE``, else ``$XDG_CONFIG_HOME/reward-kit/auth.ini``, else
``~/.config/reward-kit/auth.ini``) has one section per profile::

    [default]
    type = api-key
    api_key_file = ~/.secrets/evaluator-key

    [cloud-run]
    type = google-id-token, api-key     ; several types are combined
    audience = https://evaluator-abc-uc.a.run.app
    header = X-Serverless-Authorization ; the ID token's; api_key_header is the key's
    api_key_env = EVALUATOR_KEY

The environment gives the same keys as ``RK_AUTH_<KEY>`` (``RK_AUTH_TYPE``,
``RK_AUTH_AUDIENCE``...), plus the shorthands ``RK_API_KEY`` and ``RK_API_KEY_FILE``.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from .._errors import ConfigurationError
from ._credentials import ApiKey, Combined

__all__ = ["auth_file_path", "default_credential", "from_env", "from_profile", "from_settings"]

_KEYS = (
    "type", "api_key", "api_key_file", "api_key_env", "api_key_header", "header", "audience",
    "region", "service", "server_id", "sts_endpoint", "aws_profile", "cert", "key", "ca",
)  # fmt: skip


def auth_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``auth.ini`` is looked for."""
    env = os.environ if environ is None else environ
    if env.get("RK_AUTH_FILE"):
        return Path(env["RK_AUTH_FILE"]).expanduser()
    config = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(config) / "reward-kit" / "auth.ini"


def _read_key(values: Mapping[str, str], environ: Mapping[str, str], origin: str) -> str:
    if values.get("api_key"):
        return values["api_key"]
    if values.get("api_key_env"):
        key = environ.get(values["api_key_env"], "")
        if not key:
            raise ConfigurationError(f"{origin}: ${values['api_key_env']} is empty or unset")
        return key
    if values.get("api_key_file"):
        path = Path(values["api_key_file"]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as error:
            raise ConfigurationError(f"{origin}: cannot read {path}: {error.strerror}") from None
    raise ConfigurationError(f"{origin}: api-key needs api_key, api_key_env or api_key_file")


def _build(
    kind: str, values: Mapping[str, str], environ: Mapping[str, str], origin: str
) -> httpx.Auth:
    header = values.get("header") or "Authorization"
    if kind == "api-key":
        key_header = values.get("api_key_header") or "Authorization"
        return ApiKey(_read_key(values, environ, origin), header=key_header)
    if kind == "google-id-token":
        from ._auth_google import GoogleIdToken

        return GoogleIdToken(values.get("audience") or None, header=header)
    if kind in ("aws-sigv4", "aws-iam-token"):
        if not values.get("region"):
            raise ConfigurationError(f"{origin}: {kind} needs region")
        from ._auth_aws import AwsIamToken, AwsSigV4

        # A profile name rather than a session, so the credential pickles.
        profile = values.get("aws_profile") or None
        if kind == "aws-sigv4":
            return AwsSigV4(
                region=values["region"], service=values.get("service") or "lambda", profile=profile
            )
        return AwsIamToken(
            region=values["region"],
            server_id=values.get("server_id") or None,
            sts_endpoint=values.get("sts_endpoint") or None,
            profile=profile,
            header=header,
        )
    if kind == "mtls":
        from ._auth_tls import MutualTLS

        if not values.get("cert"):
            raise ConfigurationError(f"{origin}: mtls needs cert (and key, ca)")

        def path(name: str) -> str | None:
            value = values.get(name)
            return str(Path(value).expanduser()) if value else None

        return MutualTLS(cert=str(path("cert")), key=path("key"), ca=path("ca"))
    raise ConfigurationError(
        f"{origin}: unknown credential type {kind!r} "
        "(api-key, google-id-token, aws-sigv4, aws-iam-token, mtls)"
    )


def from_settings(
    values: Mapping[str, str],
    *,
    origin: str = "credentials",
    environ: Mapping[str, str] | None = None,
) -> httpx.Auth:
    """A credential from ``type`` and its keys (one ``auth.ini`` section's worth).

    >>> from_settings({"type": "api-key", "api_key": "rk_0123456789abcdef"})
    ApiKey(header='Authorization', key=<redacted>)
    """
    env = os.environ if environ is None else environ
    unknown = sorted(set(values) - set(_KEYS))
    if unknown:
        raise ConfigurationError(f"{origin}: unknown keys {', '.join(unknown)}")
    kinds = [k.strip() for k in values.get("type", "").split(",") if k.strip()]
    if not kinds:
        raise ConfigurationError(f"{origin}: no credential type (type = api-key, ...)")
    parts = [_build(kind, values, env, origin) for kind in kinds]
    headers = [str(getattr(p, "header", "")).lower() for p in parts if hasattr(p, "header")]
    if len(headers) != len(set(headers)):
        # Two credentials writing one header would silently overwrite each other.
        raise ConfigurationError(
            f"{origin}: two credentials would use the same header; set header (token) or "
            "api_key_header (e.g. X-Serverless-Authorization for the Google ID token)"
        )
    return parts[0] if len(parts) == 1 else Combined(*parts)


def from_profile(
    name: str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> httpx.Auth:
    """The credential of profile ``name`` (default ``$RK_AUTH_PROFILE`` or ``default``).

    >>> auth = from_profile("cloud-run")  # doctest: +SKIP
    >>> EvaluatorClient("https://evaluator-abc-uc.a.run.app", auth=auth)  # doctest: +SKIP
    """
    env = os.environ if environ is None else environ
    file = Path(path) if path is not None else auth_file_path(env)
    profile = name or env.get("RK_AUTH_PROFILE") or "default"
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    try:
        with file.open() as handle:
            parser.read_file(handle)
    except OSError as error:
        raise ConfigurationError(f"cannot read {file}: {error.strerror}") from None
    except configparser.Error as error:
        raise ConfigurationError(f"{file} is not a valid ini file: {error.message}") from None
    if not parser.has_section(profile):
        known = ", ".join(parser.sections()) or "none"
        raise ConfigurationError(f"{file} has no profile [{profile}] (profiles: {known})")
    return from_settings(dict(parser[profile]), origin=f"{file} [{profile}]", environ=env)


def from_env(environ: Mapping[str, str] | None = None) -> httpx.Auth | None:
    """A credential from ``RK_AUTH_*`` / ``RK_API_KEY*`` variables, or None if none are set.

    >>> from_env({"RK_API_KEY": "rk_0123456789abcdef"})
    ApiKey(header='Authorization', key=<redacted>)
    """
    env = os.environ if environ is None else environ
    values = {k: env[f"RK_AUTH_{k.upper()}"] for k in _KEYS if env.get(f"RK_AUTH_{k.upper()}")}
    for variable, key in (("RK_API_KEY", "api_key"), ("RK_API_KEY_FILE", "api_key_file")):
        if env.get(variable):
            values.setdefault(key, env[variable])
    if not values:
        return None
    if "type" not in values and ("api_key" in values or "api_key_file" in values):
        values["type"] = "api-key"
    return from_settings(values, origin="RK_AUTH_* environment", environ=env)


def _has_default_profile(file: Path) -> bool:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    try:
        with file.open() as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise ConfigurationError(f"cannot read {file}: {error.strerror}") from None
    except configparser.Error as error:
        raise ConfigurationError(f"{file} is not a valid ini file: {error.message}") from None
    return parser.has_section("default")


def default_credential(environ: Mapping[str, str] | None = None) -> httpx.Auth | None:
    """What a client uses when given no ``auth`` (``EvaluatorClient``, ``AsyncEvaluatorClient``,
    ``trl_reward``, ``compute_score_fn``): the profile ``$RK_AUTH_PROFILE``, else the
    environment (``RK_API_KEY``, ``RK_API_KEY_FILE``, ``RK_AUTH_*``), else the ``[default]``
    profile of ``auth.ini`` if there is one, else None (no credential).

    Read when a client is made, never at import. A file with other profiles but no
    ``[default]`` is not an error here; a named ``$RK_AUTH_PROFILE`` that is missing is.

    >>> default_credential({"RK_API_KEY": "rk_0123456789abcdef", "RK_AUTH_FILE": "/nonexistent"})
    ApiKey(header='Authorization', key=<redacted>)
    """
    env = os.environ if environ is None else environ
    sources: list[Callable[[], httpx.Auth | None]] = []
    if env.get("RK_AUTH_PROFILE"):
        sources.append(lambda: from_profile(environ=env))
    sources.append(lambda: from_env(env))
    sources.append(
        lambda: (
            from_profile("default", environ=env)
            if _has_default_profile(auth_file_path(env))
            else None
        )
    )
    for source in sources:
        credential = source()
        if credential is not None:
            return credential
    return None
