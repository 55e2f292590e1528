"""Server settings, resolved in one place: CLI flag > ``RK_*`` environment variable > default.

Nothing here reads the environment at import time; :meth:`ServeSettings.resolve` is given the
flags that were set explicitly and the environment to read.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError

__all__ = ["ServeSettings"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
AUTH_MODES = ("api-key", "google-iam", "aws-iam", "mtls")
# Google's JWKS (RS256) endpoint; the PEM-map form is https://www.googleapis.com/oauth2/v1/certs.
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


def _int(text: str) -> int:
    return int(text)


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace("\n", ",").split(",") if part.strip())


def _semicolon_list(text: str) -> tuple[str, ...]:
    # Certificate subjects (RFC 4514) contain commas, so their lists split on ';' and newlines.
    return tuple(part.strip() for part in text.replace("\n", ";").split(";") if part.strip())


def _env(name: str, parse: Callable[[str], Any]) -> dict[str, Any]:
    return {"env": name, "parse": parse}


# Deadline of a function that sets none (`rk serve` and `rk eval`).
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """Everything ``rk-serve`` can be told. Construct directly in code, or :meth:`resolve`.

    >>> ServeSettings(port=9000).host
    '127.0.0.1'
    """

    targets: tuple[str, ...] = field(default=(), metadata=_env("RK_TARGETS", _list))
    host: str = field(default="127.0.0.1", metadata=_env("RK_HOST", str))
    port: int = field(default=8000, metadata=_env("RK_PORT", _int))
    workers: int | None = field(default=None, metadata=_env("RK_WORKERS", _int))
    timeout: float = field(default=DEFAULT_TIMEOUT, metadata=_env("RK_TIMEOUT", _positive_float))
    max_timeout: float = field(default=300.0, metadata=_env("RK_MAX_TIMEOUT", _positive_float))
    max_body_bytes: int = field(default=16 * 1024 * 1024, metadata=_env("RK_MAX_BODY_BYTES", _int))
    max_batch_items: int = field(default=10_000, metadata=_env("RK_MAX_BATCH_ITEMS", _int))
    max_in_flight: int = field(default=64, metadata=_env("RK_MAX_IN_FLIGHT", _int))
    memory_limit_mb: int | None = field(default=None, metadata=_env("RK_MEMORY_LIMIT_MB", _int))
    api_keys: tuple[str, ...] = field(default=(), metadata=_env("RK_API_KEYS", _list))
    api_key_file: str | None = field(default=None, metadata=_env("RK_API_KEYS_FILE", str))
    allow_unauthenticated: bool = field(
        default=False, metadata=_env("RK_ALLOW_UNAUTHENTICATED", _bool)
    )
    log_level: str = field(default="info", metadata=_env("RK_LOG_LEVEL", str))
    log_format: str = field(default="text", metadata=_env("RK_LOG_FORMAT", str))
    metrics: bool = field(default=True, metadata=_env("RK_METRICS", _bool))
    # Cloud Run sends SIGTERM and kills 10 s later: finish in-flight batches within 8 s.
    shutdown_grace: float = field(default=8.0, metadata=_env("RK_SHUTDOWN_GRACE", _positive_float))
    # --- auth (see docs/auth.md) ---
    auth: tuple[str, ...] = field(default=(), metadata=_env("RK_AUTH", _list))
    google_audiences: tuple[str, ...] = field(
        default=(), metadata=_env("RK_GOOGLE_AUDIENCES", _list)
    )
    google_certs_url: str = field(
        default=GOOGLE_CERTS_URL, metadata=_env("RK_GOOGLE_CERTS_URL", str)
    )
    google_issuers: tuple[str, ...] = field(
        default=GOOGLE_ISSUERS, metadata=_env("RK_GOOGLE_ISSUERS", _list)
    )
    google_allowed_emails: tuple[str, ...] = field(
        default=(), metadata=_env("RK_GOOGLE_ALLOWED_EMAILS", _list)
    )
    aws_allowed_arns: tuple[str, ...] = field(
        default=(), metadata=_env("RK_AWS_ALLOWED_ARNS", _list)
    )
    aws_sts_endpoint: str | None = field(default=None, metadata=_env("RK_AWS_STS_ENDPOINT", str))
    aws_server_id: str | None = field(default=None, metadata=_env("RK_AWS_SERVER_ID", str))
    ssl_certfile: str | None = field(default=None, metadata=_env("RK_SSL_CERTFILE", str))
    ssl_keyfile: str | None = field(default=None, metadata=_env("RK_SSL_KEYFILE", str))
    ssl_ca_certs: str | None = field(default=None, metadata=_env("RK_SSL_CA_CERTS", str))
    mtls_allowed_subjects: tuple[str, ...] = field(
        default=(), metadata=_env("RK_MTLS_ALLOWED_SUBJECTS", _semicolon_list)
    )
    mtls_allowed_uris: tuple[str, ...] = field(
        default=(), metadata=_env("RK_MTLS_ALLOWED_URIS", _list)
    )
    auth_failure_limit: int = field(default=20, metadata=_env("RK_AUTH_FAILURE_LIMIT", _int))
    auth_failure_window: float = field(
        default=60.0, metadata=_env("RK_AUTH_FAILURE_WINDOW", _positive_float)
    )

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be 0-65535, got {self.port}")
        for name in ("max_body_bytes", "max_batch_items", "max_in_flight"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.workers is not None and self.workers < 0:
            problems.append(f"workers must be 0 (no worker processes) or more, got {self.workers}")
        if self.memory_limit_mb is not None and self.memory_limit_mb < 64:
            problems.append(f"memory_limit_mb must be at least 64, got {self.memory_limit_mb}")
        if self.timeout > self.max_timeout:
            problems.append(
                f"timeout ({self.timeout:g}s) is above max_timeout ({self.max_timeout:g}s)"
            )
        if self.log_level.lower() not in LOG_LEVELS:
            problems.append(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in ("text", "json"):
            problems.append(f"log_format must be 'text' or 'json', got {self.log_format!r}")
        problems += self._auth_problems()
        if problems:
            raise ConfigurationError("invalid settings: " + "; ".join(problems))

    def _auth_problems(self) -> list[str]:
        problems = [
            f"unknown auth mode {mode!r} (known: {', '.join(AUTH_MODES)})"
            for mode in self.auth
            if mode not in AUTH_MODES
        ]
        if (self.ssl_keyfile or self.ssl_ca_certs) and not self.ssl_certfile:
            problems.append("ssl_keyfile and ssl_ca_certs need ssl_certfile")
        if self.auth_failure_limit < 0:
            problems.append(
                f"auth_failure_limit must be 0 (off) or more, got {self.auth_failure_limit}"
            )
        return problems

    @property
    def auth_modes(self) -> tuple[str, ...]:
        """The modes in force: ``auth`` if given, else ``api-key`` when keys are configured."""
        if self.auth:
            return tuple(dict.fromkeys(self.auth))
        return ("api-key",) if self.api_keys or self.api_key_file else ()

    @classmethod
    def resolve(cls, flags: Mapping[str, Any], environ: Mapping[str, str]) -> ServeSettings:
        """Merge explicitly given ``flags`` (None means not given) over ``RK_*`` variables.

        Of the Docker-secret ``*_FILE`` convention only ``RK_API_KEYS_FILE`` exists: it names
        the key file (``RK_API_KEYS_FILE=/run/secrets/keys`` is ``--api-key-file
        /run/secrets/keys``), read when the authenticators are built. Other variables hold
        values, not paths (certificate and key variables such as ``RK_SSL_KEYFILE`` are
        paths by nature).
        """
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            given = flags.get(f.name)
            if given is not None and given != ():
                values[f.name] = tuple(given) if isinstance(given, list) else given
                continue
            variable = f.metadata["env"]
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as error:
                raise ConfigurationError(f"{variable}={raw!r} is not valid: {error}") from None
        return cls(**values)

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
