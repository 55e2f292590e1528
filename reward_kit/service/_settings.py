"""Server settings, resolved in one place: CLI flag > ``RK_*`` environment variable > default.

Each setting is declared once, as a field made by :func:`setting` (see _setting.py): its
variable, flag, kind, help and shown default. ``rk serve``'s options and the settings tables
in docs/http-api.md and docs/auth.md are generated from these fields (``python -m
reward_kit.service._docs``).

Nothing here reads the environment at import time; :meth:`ServeSettings.resolve` is given the
flags that were set explicitly and the environment to read.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigurationError
from .._vocabulary import AUTH_MODES, DEFAULT_DEADLINE, ENV_VERIFY_MODES, LOG_FORMATS, LOG_LEVELS
from ._setting import Setting, described, integer, number, seconds, setting

__all__ = ["ServeSettings"]

# Google's JWKS (RS256) endpoint; the PEM-map form is https://www.googleapis.com/oauth2/v1/certs.
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


# An --allowed-hosts entry: "*", a name or "*.name" (subdomains), an IPv4 or [IPv6] address.
_HOST_PATTERN = re.compile(
    r"^(\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?|\[?[0-9A-Fa-f:.]+\]?)$"
)


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """Everything ``rk-serve`` can be told. Construct directly in code, or :meth:`resolve`.

    >>> ServeSettings(port=9000).host
    '127.0.0.1'
    """

    targets: tuple[str, ...] = setting(
        (),
        env="RK_TARGETS",
        help="Reward functions to serve: file.py, file.py:fn, pkg.mod:fn or pkg.mod.fn.",
        kind="arguments",
        flag=None,
        shown="",
        metavar="TARGET",
    )
    host: str = setting("127.0.0.1", env="RK_HOST", help="Address to bind.")
    port: int = setting(8000, env="RK_PORT", help="Port to listen on.", parse=integer)
    workers: int | None = setting(
        None,
        env="RK_WORKERS",
        help="Worker processes; 0 runs rewards in threads of the server (AWS Lambda).",
        parse=integer,
        shown="one per core",
    )
    timeout: float = setting(
        DEFAULT_DEADLINE,
        env="RK_TIMEOUT",
        help="Deadline of one item, for functions that set none.",
        parse=seconds,
    )
    max_timeout: float = setting(
        300.0,
        env="RK_MAX_TIMEOUT",
        help="Longest deadline a request may ask for with ?timeout=.",
        parse=seconds,
    )
    max_body_bytes: int = setting(
        16 * 1024 * 1024,
        env="RK_MAX_BODY_BYTES",
        help="Largest request body, in bytes (413 above).",
        parse=integer,
        shown="16 MiB",
    )
    max_batch_items: int = setting(
        10_000,
        env="RK_MAX_BATCH_ITEMS",
        help="Most items in one batch (413 above).",
        parse=integer,
    )
    max_in_flight: int = setting(
        64,
        env="RK_MAX_IN_FLIGHT",
        help="Requests evaluated at once; more wait in the queue (--max-queued).",
        parse=integer,
    )
    # A trainer's burst (OpenRLHF: one request per sample, hundreds at once; verl: workers x
    # threads) waits here instead of spending its few retries on 429s.
    max_queued: int = setting(
        1024,
        env="RK_MAX_QUEUED",
        help="Requests that may wait for a slot, first come first served; more get 429. 0 = none.",
        parse=integer,
    )
    queue_timeout: float = setting(
        30.0,
        env="RK_QUEUE_TIMEOUT",
        help="Longest wait for a slot; 429 after it, or at once when the wait would be longer.",
        parse=seconds,
    )
    # None: half the memory, shared by the workers (Engine); 0: no limit.
    memory_limit_mb: int | None = setting(
        None,
        env="RK_MEMORY_LIMIT_MB",
        help="Address-space limit of each worker, in MiB; 0 = none.",
        parse=integer,
        shown="RAM / 2 / workers",
    )
    max_tasks_per_worker: int | None = setting(
        None,
        env="RK_MAX_TASKS_PER_WORKER",
        help="Items a worker serves before it is replaced.",
        parse=integer,
        shown="no limit",
    )
    max_processes: int | None = setting(
        None,
        env="RK_MAX_PROCESSES",
        help="Processes (and threads) the rewards of one worker may run at once.",
        parse=integer,
        shown="no limit",
    )
    worker_env_drop: tuple[str, ...] = setting(
        (),
        env="RK_WORKER_ENV_DROP",
        help="More variables (globs) removed from the workers' environment.",
        kind="list",
        metavar="GLOB,...",
    )
    log_level: str = setting(
        "info", env="RK_LOG_LEVEL", help="Log level.", choices=LOG_LEVELS, metavar="LEVEL"
    )
    log_format: str = setting(
        "text",
        env="RK_LOG_FORMAT",
        help="json: one object per line, with request_id and identity.",
        choices=LOG_FORMATS,
        metavar="FORMAT",
    )
    metrics: bool = setting(
        True,
        env="RK_METRICS",
        help="Serve Prometheus metrics at /metrics (behind auth).",
        kind="switch",
    )
    # Cloud Run sends SIGTERM and kills 10 s later: finish in-flight batches within 8 s.
    shutdown_grace: float = setting(
        8.0,
        env="RK_SHUTDOWN_GRACE",
        help="Time in-flight requests get to finish after SIGTERM.",
        parse=seconds,
    )
    # --- HTTP connections and requests (see docs/http-api.md#clients-and-connections) ---
    header_timeout: float = setting(
        10.0,
        env="RK_HEADER_TIMEOUT",
        help="Time a request's headers may take, from the connection's start or the last answer.",
        parse=seconds,
    )
    body_timeout: float = setting(
        30.0,
        env="RK_BODY_TIMEOUT",
        help="Time a request's body may take after its headers, and a client to read an answer.",
        parse=seconds,
    )
    max_connections: int = setting(
        1024,
        env="RK_MAX_CONNECTIONS",
        help="Open connections; lowered at start-up to fit the open-file limit (ulimit -n).",
        parse=integer,
    )
    # Without auth only loopback Hosts are answered (DNS rebinding); with auth any, unless
    # this lists some.
    allowed_hosts: tuple[str, ...] = setting(
        (),
        env="RK_ALLOWED_HOSTS",
        help="Host names answered besides loopback ones: rk.internal, *.example.org, * (any).",
        kind="list",
        shown="loopback only without auth, any with auth",
        metavar="HOST,...",
    )
    forwarded_allow_ips: tuple[str, ...] = setting(
        (),
        env="RK_FORWARDED_ALLOW_IPS",
        help="Proxies (IPs, CIDRs, *) whose X-Forwarded-For and -Proto are believed.",
        kind="list",
        metavar="IP,...",
    )
    # --- trainer integrations ---
    # Off by default: a made-up reward trains the policy on an error (docs/sdk.md#openrlhf).
    openrlhf_on_error: float | None = setting(
        None,
        env="RK_OPENRLHF_ON_ERROR",
        help="/openrlhf: reward and score of a failed sample, flagged reward_kit_failed in "
        "extra_logs; off: the request fails.",
        parse=number,
        shown="off",
        metavar="SCORE",
    )
    # --- multi-step environments (see docs/environments.md) ---
    env_max_sessions: int = setting(
        256,
        env="RK_ENV_MAX_SESSIONS",
        help="Environment sessions open at once (each is a process); more get 429.",
        parse=integer,
    )
    env_idle_ttl: float = setting(
        300.0,
        env="RK_ENV_IDLE_TTL",
        help="A session untouched this long is ended by the reaper.",
        parse=seconds,
    )
    env_max_lifetime: float = setting(
        3600.0,
        env="RK_ENV_MAX_LIFETIME",
        help="A session is ended this long after it started, however busy.",
        parse=seconds,
    )
    env_verify: str = setting(
        "report",
        env="RK_ENV_VERIFY",
        help="evaluate: a transcript that differs from the session's ledger is reported "
        "(report), also makes the score invalid (enforce), or is not checked (off).",
        choices=ENV_VERIFY_MODES,
        metavar="MODE",
    )
    # None: half the memory, shared by --env-max-sessions sessions (at least 256 MiB each).
    env_memory_limit_mb: int | None = setting(
        None,
        env="RK_ENV_MEMORY_LIMIT_MB",
        help="Address-space limit of each session's process, in MiB; 0 = none.",
        parse=integer,
        shown="RAM / 2 / env-max-sessions",
    )
    # --- auth (see docs/auth.md) ---
    auth: tuple[str, ...] = setting(
        (),
        env="RK_AUTH",
        help="Auth modes.",
        kind="list",
        choices=AUTH_MODES,
        shown="api-key when keys are configured",
        section="auth",
        metavar="MODE,...",
    )
    # No flag: a key on a command line is visible to every user of the machine.
    api_keys: tuple[str, ...] = setting(
        (),
        env="RK_API_KEYS",
        help="API keys inline: KEY, ID KEY or ID sha256:HEX entries.",
        kind="list",
        flag=None,
        section="auth",
        metavar="KEY,...",
    )
    api_key_file: str | None = setting(
        None,
        env="RK_API_KEYS_FILE",
        help="File of API keys, one KEY, ID KEY or ID sha256:HEX per line.",
        metavar="FILE",
        section="auth",
    )
    allow_unauthenticated: bool = setting(
        False,
        env="RK_ALLOW_UNAUTHENTICATED",
        help="Allow a non-loopback bind with no auth (something in front must do it).",
        kind="flag",
        section="auth",
    )
    google_audiences: tuple[str, ...] = setting(
        (),
        env="RK_GOOGLE_AUDIENCES",
        help="Accepted ID-token aud values (required for google-iam).",
        kind="repeat",
        flag="--google-audience",
        section="auth",
        metavar="AUDIENCE",
    )
    google_certs_url: str = setting(
        GOOGLE_CERTS_URL,
        env="RK_GOOGLE_CERTS_URL",
        help="Google's signing keys, JWKS or PEM map, cached per Cache-Control.",
        metavar="URL",
        section="auth",
    )
    google_issuers: tuple[str, ...] = setting(
        GOOGLE_ISSUERS,
        env="RK_GOOGLE_ISSUERS",
        help="Accepted ID-token iss values.",
        kind="list",
        flag=None,
        section="auth",
        metavar="ISSUER,...",
    )
    google_allowed_emails: tuple[str, ...] = setting(
        (),
        env="RK_GOOGLE_ALLOWED_EMAILS",
        help="Allowed caller emails (patterns: *@PROJECT.iam.gserviceaccount.com).",
        kind="repeat",
        flag="--google-allow-email",
        shown="any",
        section="auth",
        metavar="PATTERN",
    )
    aws_allowed_arns: tuple[str, ...] = setting(
        (),
        env="RK_AWS_ALLOWED_ARNS",
        help="Allowed caller ARNs (patterns; required for aws-iam).",
        kind="repeat",
        flag="--aws-allow-arn",
        section="auth",
        metavar="PATTERN",
    )
    aws_sts_endpoint: str | None = setting(
        None,
        env="RK_AWS_STS_ENDPOINT",
        help="The only STS origin to ask (a VPC endpoint, tests).",
        metavar="URL",
        shown="the real STS hosts",
        section="auth",
    )
    aws_server_id: str | None = setting(
        None,
        env="RK_AWS_SERVER_ID",
        help="Value clients must sign as X-RK-Server-ID.",
        section="auth",
        metavar="ID",
    )
    ssl_certfile: str | None = setting(
        None,
        env="RK_SSL_CERTFILE",
        help="Server certificate (PEM); turns on HTTPS.",
        metavar="FILE",
        section="auth",
    )
    ssl_keyfile: str | None = setting(
        None,
        env="RK_SSL_KEYFILE",
        help="Server private key (PEM).",
        metavar="FILE",
        section="auth",
    )
    ssl_ca_certs: str | None = setting(
        None,
        env="RK_SSL_CA_CERTS",
        help="CA bundle that signs client certificates (mtls).",
        metavar="FILE",
        section="auth",
    )
    # Subjects (RFC 4514) contain commas, so their variable is split on ';' and newlines.
    mtls_allowed_subjects: tuple[str, ...] = setting(
        (),
        env="RK_MTLS_ALLOWED_SUBJECTS",
        help="Allowed client certificate subjects, RFC 4514 (patterns).",
        kind="repeat",
        flag="--mtls-allow-subject",
        separator=";",
        shown="any",
        section="auth",
        metavar="PATTERN",
    )
    mtls_allowed_uris: tuple[str, ...] = setting(
        (),
        env="RK_MTLS_ALLOWED_URIS",
        help="Allowed client certificate SAN URIs (patterns: spiffe://rl-lab/*).",
        kind="repeat",
        flag="--mtls-allow-uri",
        shown="any",
        section="auth",
        metavar="PATTERN",
    )
    auth_failure_limit: int = setting(
        20,
        env="RK_AUTH_FAILURE_LIMIT",
        help="Failed auth attempts per address per window before 429; 0 = off.",
        parse=integer,
        section="auth",
    )
    auth_failure_window: float = setting(
        60.0,
        env="RK_AUTH_FAILURE_WINDOW",
        help="The window of --auth-failure-limit.",
        parse=seconds,
        section="auth",
    )

    def __post_init__(self) -> None:
        # Durations are checked here too, not only when read from a flag or variable, so
        # ServeSettings(timeout=0) is refused like RK_TIMEOUT=0.
        problems = [
            f"{spec.name} must be a positive number of seconds, got {value!r}"
            for spec in _DURATIONS
            if not (math.isfinite(value := getattr(self, spec.name)) and value > 0)
        ]
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be 0-65535, got {self.port}")
        for name in ("max_body_bytes", "max_batch_items", "max_in_flight", "env_max_sessions"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.workers is not None and self.workers < 0:
            problems.append(f"workers must be 0 (no worker processes) or more, got {self.workers}")
        if self.memory_limit_mb is not None and 0 < self.memory_limit_mb < 64:
            problems.append(
                f"memory_limit_mb must be 0 (no limit) or at least 64, got {self.memory_limit_mb}"
            )
        if self.env_memory_limit_mb is not None and 0 < self.env_memory_limit_mb < 64:
            problems.append(
                "env_memory_limit_mb must be 0 (no limit) or at least 64, "
                f"got {self.env_memory_limit_mb}"
            )
        if self.max_queued < 0:
            problems.append(f"max_queued must be 0 (no queue) or more, got {self.max_queued}")
        for name in ("max_tasks_per_worker", "max_processes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1, got {value}")
        if self.timeout > self.max_timeout:
            problems.append(
                f"timeout ({self.timeout:g}s) is above max_timeout ({self.max_timeout:g}s)"
            )
        problems += [
            f"{spec.name} must be one of {', '.join(spec.choices)}, got {value!r}"
            for spec in _CHOICES
            if (value := getattr(self, spec.name)).lower() not in spec.choices
        ]
        if self.openrlhf_on_error is not None and not math.isfinite(self.openrlhf_on_error):
            problems.append(
                f"openrlhf_on_error must be a finite number, got {self.openrlhf_on_error}"
            )
        problems += self._auth_problems()
        problems += self._http_problems()
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

    def _http_problems(self) -> list[str]:
        problems = []
        if self.max_connections < 8:
            problems.append(f"max_connections must be at least 8, got {self.max_connections}")
        problems += [
            f"allowed_hosts: {p!r} is not a host name, '*.domain' or '*' (no scheme, no port)"
            for p in self.allowed_hosts
            if not _HOST_PATTERN.match(p)
        ]
        for entry in self.forwarded_allow_ips:
            try:
                if entry != "*":
                    ipaddress.ip_network(entry, strict=False)
            except ValueError:
                problems.append(f"forwarded_allow_ips: {entry!r} is not an IP, a CIDR or '*'")
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
        unknown = set(flags) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for spec in cls.describe():
            given = flags.get(spec.name)
            if given is not None and given != ():
                values[spec.name] = tuple(given) if isinstance(given, list) else given
                continue
            raw = environ.get(spec.env)
            if raw is None or raw == "":
                continue
            try:
                values[spec.name] = spec.parse(raw)
            except ValueError as error:
                raise ConfigurationError(f"{spec.env}={raw!r} is not valid: {error}") from None
        return cls(**values)

    @classmethod
    def describe(cls) -> tuple[Setting, ...]:
        """Every setting's variable, flag, kind, default and help, in declaration order: what
        ``rk serve``'s options and the docs' settings tables are made from.

        >>> port = next(s for s in ServeSettings.describe() if s.name == "port")
        >>> port.flag, port.env, port.shown
        ('--port', 'RK_PORT', '8000')
        """
        return tuple(described(f) for f in dataclasses.fields(cls))

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


_DURATIONS = tuple(spec for spec in ServeSettings.describe() if spec.parse is seconds)
_CHOICES = tuple(spec for spec in ServeSettings.describe() if spec.choices and spec.kind == "value")
