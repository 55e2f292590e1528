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
    url = https://evaluator-abc-uc.a.run.app  ; used implicitly only for this evaluator

The environment gives the same keys as ``RK_AUTH_<KEY>`` (``RK_AUTH_TYPE``,
``RK_AUTH_AUDIENCE``...), plus the shorthands ``RK_API_KEY`` and ``RK_API_KEY_FILE``.
"""

from __future__ import annotations

import configparser
import ipaddress
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx

from .._errors import ConfigurationError
from ._credentials import ApiKey, Combined

__all__ = ["auth_file_path", "default_credential", "from_env", "from_profile", "from_settings"]

logger = logging.getLogger("reward_kit.sdk")

_KEYS = (
    "type", "api_key", "api_key_file", "api_key_env", "api_key_header", "header", "audience",
    "region", "service", "server_id", "sts_endpoint", "aws_profile", "cert", "key", "ca",
)  # fmt: skip
# Keys only a profile has: ``url`` scopes where its credential goes without an explicit auth=.
_PROFILE_KEYS = ("url",)


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
    unknown = sorted(set(values) - set(_KEYS) - set(_PROFILE_KEYS))
    if unknown:
        raise ConfigurationError(f"{origin}: unknown keys {', '.join(unknown)}")
    if values.get("url"):
        _check_scope(values["url"], origin)
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
    values, origin = _profile(file, name or env.get("RK_AUTH_PROFILE") or "default")
    return from_settings(values, origin=origin, environ=env)


def _profile(file: Path, profile: str) -> tuple[dict[str, str], str]:
    """One profile's keys, and where they came from (for error messages)."""
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
    return dict(parser[profile]), f"{file} [{profile}]"


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


def _check_scope(value: str, origin: str) -> None:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"{origin}: url: expected an http(s) URL, got {value!r}")
    if url.userinfo:
        # Never echo it: it is a password.
        raise ConfigurationError(f"{origin}: url: must not hold a user or password")
    if url.query or url.fragment:
        raise ConfigurationError(f"{origin}: url: expected no query or fragment, got {value!r}")


def _within(scope: str, url: str) -> bool:
    """Whether ``url`` is under ``scope``: same scheme, host and port, and a path that starts
    with the scope's at a ``/`` (so ``https://eval.example`` is not ``https://eval.example.net``
    and ``/v1`` is not ``/v10``)."""
    try:
        base, target = httpx.URL(scope), httpx.URL(url)
    except httpx.InvalidURL:
        return False
    if (base.scheme, base.host, base.port) != (target.scheme, target.host, target.port):
        return False
    prefix = base.path.rstrip("/")
    return not prefix or target.path == prefix or target.path.startswith(prefix + "/")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _implicit_allowed(url: str) -> bool:
    """https anywhere, plain http only to this machine: the credential a user did not pass
    explicitly must not cross a network in clear text."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme == "https" or (parsed.scheme == "http" and _is_loopback(parsed.host))


def _origin_of(url: str) -> str:
    # scheme://host:port only: a URL's userinfo, path or query are not for the log.
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "that URL"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}"


_Source = tuple[str, str | None, Callable[[], httpx.Auth | None]]


def _sources(env: Mapping[str, str]) -> Iterator[_Source]:
    """(where from, url scope, build) for each place a default credential may come from, in
    order; lazy, so a later file is not read once an earlier source answers."""
    if env.get("RK_AUTH_PROFILE"):
        values, origin = _profile(auth_file_path(env), env["RK_AUTH_PROFILE"])
        yield (
            origin,
            values.get("url") or None,
            lambda: from_settings(values, origin=origin, environ=env),
        )
    yield "the RK_AUTH_*/RK_API_KEY* environment", None, lambda: from_env(env)
    file = auth_file_path(env)
    if _has_default_profile(file):
        default, where = _profile(file, "default")
        yield (
            where,
            default.get("url") or None,
            lambda: from_settings(default, origin=where, environ=env),
        )


def default_credential(
    environ: Mapping[str, str] | None = None, *, url: str | None = None
) -> httpx.Auth | None:
    """What a client uses when given no ``auth`` (``EvaluatorClient``, ``AsyncEvaluatorClient``,
    ``trl_reward``, ``compute_score_fn``): the profile ``$RK_AUTH_PROFILE``, else the
    environment (``RK_API_KEY``, ``RK_API_KEY_FILE``, ``RK_AUTH_*``), else the ``[default]``
    profile of ``auth.ini`` if there is one, else None (no credential).

    Read when a client is made, never at import. A file with other profiles but no
    ``[default]`` is not an error here; a named ``$RK_AUTH_PROFILE`` that is missing is.

    With ``url`` (the evaluator a client is about to call; clients always pass it), only a
    credential that may go there implicitly is returned: a profile with ``url = PREFIX`` only
    for URLs under that prefix (other profiles are skipped), any other credential only for
    ``https://`` URLs and plain ``http://`` to loopback (127.0.0.0/8, ::1, localhost). A
    credential held back from plain http to another host is logged as a WARNING; an explicit
    ``auth=`` is always sent.

    >>> default_credential({"RK_API_KEY": "rk_0123456789abcdef", "RK_AUTH_FILE": "/nonexistent"})
    ApiKey(header='Authorization', key=<redacted>)
    """
    env = os.environ if environ is None else environ
    held_back: list[str] = []
    for origin, scope, build in _sources(env):
        if scope is not None:
            _check_scope(scope, origin)  # a malformed url must not silently match nothing
        if url is not None and scope is not None and not _within(scope, url):
            continue  # that profile is for another evaluator
        credential = build()
        if credential is None:
            continue
        if url is None or scope is not None or _implicit_allowed(url):
            return credential
        held_back.append(origin)
    if held_back and url is not None:
        logger.warning(
            "not sending the default credential (from %s) to %s: it is plain http to a host "
            "that is not this machine, so the credential would cross the network in clear "
            "text; pass auth= explicitly to send it anyway (or auth=False to send none), or "
            "give its auth.ini profile url = %s",
            " and ".join(held_back),
            _origin_of(url),
            _origin_of(url),
        )
    return None
