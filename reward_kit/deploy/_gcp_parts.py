"""gcp-cloud-run pieces: validated options, the service message, the key secret, invoker IAM."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigurationError
from .._extras import require
from ._common import DeployError, new_api_key
from ._gcp_build import gcp_api
from ._target import DeploySpec, Reporter

__all__ = [
    "INVOKER",
    "CloudRunOptions",
    "ensure_key_secret",
    "invoker_policy",
    "service_env",
    "service_message",
]

INVOKER = "roles/run.invoker"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
PORT = 8080
_INGRESS = {
    "all": "INGRESS_TRAFFIC_ALL",
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
}
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.-]+:[a-z][a-z0-9-]+$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]$")
_MEMBER = re.compile(r"^(user|serviceAccount|group|domain|principal|principalSet):\S+$")
_EMAIL_MEMBER = re.compile(r"^(user|serviceAccount):(\S+@\S+)$")


def _int(options: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"gcp-cloud-run: {key} must be an integer {low}-{high}, got {value!r}"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class CloudRunOptions:
    """gcp-cloud-run options with their defaults, validated before any cloud call.

    >>> spec = DeploySpec(name="rw", sources=("r.py",), auth="google-iam",
    ...     options={"project": "my-proj-1", "invokers": ["user:me@example.com"]})
    >>> CloudRunOptions.from_spec(spec).service_name
    'projects/my-proj-1/locations/us-central1/services/rw'
    """

    name: str
    project: str
    region: str = "us-central1"
    repository: str = "reward-kit"
    service_account: str | None = None
    invokers: tuple[str, ...] = ()
    memory: str = "1Gi"
    cpu: str = "1"
    concurrency: int = 16
    min_instances: int = 0
    max_instances: int = 10
    timeout: int = 300
    ingress: str = "all"
    rotate_key: bool = False
    source_bucket: str | None = None
    image: str | None = None

    @classmethod
    def from_spec(cls, spec: DeploySpec) -> CloudRunOptions:
        o = spec.options
        project = o.get("project")
        if not project:
            raise ConfigurationError(
                "gcp-cloud-run needs a project: pass --project or set project under "
                "[deploy.gcp-cloud-run] in reward-kit.toml"
            )
        if not _PROJECT.match(str(project)):
            raise ConfigurationError(f"gcp-cloud-run: {project!r} is not a Google Cloud project ID")
        region = str(o.get("region") or cls.region)
        if not _REGION.match(region):
            raise ConfigurationError(f"gcp-cloud-run: {region!r} is not a region like us-central1")
        if spec.auth in ("mtls", "aws-iam"):
            raise ConfigurationError(
                f"gcp-cloud-run does not support --auth {spec.auth}: Google's front end "
                "terminates TLS and authenticates with Google identities; use api-key or google-iam"
            )
        invokers = tuple(str(m) for m in o.get("invokers") or ())
        for member in invokers:
            if not _MEMBER.match(member):
                raise ConfigurationError(
                    f"gcp-cloud-run: invoker {member!r} must look like "
                    "serviceAccount:EMAIL, user:EMAIL, group:EMAIL or domain:NAME"
                )
        if spec.auth == "google-iam" and not invokers:
            raise ConfigurationError(
                "gcp-cloud-run --auth google-iam needs at least one --invoker "
                "(e.g. serviceAccount:trainer@PROJECT.iam.gserviceaccount.com)"
            )
        account = o.get("service_account")
        if spec.auth == "api-key" and not account:
            raise ConfigurationError(
                "gcp-cloud-run --auth api-key needs --service-account EMAIL: the runtime identity "
                "that alone is given read access to the key's secret (see docs/deploy.md)"
            )
        ingress = str(o.get("ingress") or cls.ingress)
        if ingress not in _INGRESS:
            raise ConfigurationError(f"gcp-cloud-run: ingress must be one of {', '.join(_INGRESS)}")
        minimum = _int(o, "min_instances", cls.min_instances, 0, 1000)
        maximum = _int(o, "max_instances", cls.max_instances, 1, 1000)
        if minimum > maximum:
            raise ConfigurationError(
                f"gcp-cloud-run: min_instances ({minimum}) is above max_instances ({maximum})"
            )
        return cls(
            name=spec.name,
            project=str(project),
            region=region,
            repository=str(o.get("repository") or cls.repository),
            service_account=str(account) if account else None,
            invokers=invokers,
            memory=str(o.get("memory") or cls.memory),
            cpu=str(o.get("cpu") or cls.cpu),
            concurrency=_int(o, "concurrency", cls.concurrency, 1, 1000),
            min_instances=minimum,
            max_instances=maximum,
            timeout=_int(o, "timeout", cls.timeout, 1, 3600),
            ingress=ingress,
            rotate_key=bool(o.get("rotate_key", False)),
            source_bucket=o.get("source_bucket") or None,
            image=o.get("image") or None,
        )

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def service_name(self) -> str:
        return f"{self.parent}/services/{self.name}"

    @property
    def secret_id(self) -> str:
        return f"rk-{self.name}-api-key"

    @property
    def secret_name(self) -> str:
        return f"projects/{self.project}/secrets/{self.secret_id}"

    @property
    def audience(self) -> str:
        """A custom audience known before the service (and its URL) exists."""
        return f"reward-kit:{self.project}:{self.region}:{self.name}"

    def invoker_members(self, auth: str) -> list[str]:
        # google-iam: only the given members. api-key/none: anyone reaches the app, which then
        # checks the key (or, for none, was explicitly asked to be open).
        return list(self.invokers) if auth == "google-iam" else ["allUsers"]


def service_env(
    auth: str,
    options: CloudRunOptions,
    *,
    audiences: Sequence[str],
    secret_version: str | None,
) -> list[dict[str, Any]]:
    """The evaluator's RK_* environment for ``auth``; the key only ever as a secret reference."""
    if auth == "none":
        return [{"name": "RK_ALLOW_UNAUTHENTICATED", "value": "true"}]
    env: list[dict[str, Any]] = [{"name": "RK_AUTH", "value": auth}]
    if auth == "api-key":
        ref = {"secret": options.secret_id, "version": secret_version or "latest"}
        env.append({"name": "RK_API_KEYS", "value_source": {"secret_key_ref": ref}})
    elif auth == "google-iam":
        every = [options.audience, *audiences]
        env.append({"name": "RK_GOOGLE_AUDIENCES", "value": ",".join(dict.fromkeys(every))})
        emails = [_EMAIL_MEMBER.match(m) for m in options.invokers]
        # Groups and domains cannot be checked by email here; then Cloud Run's IAM is the gate.
        if all(emails):
            allowed = ",".join(m.group(2) for m in emails if m)
            env.append({"name": "RK_GOOGLE_ALLOWED_EMAILS", "value": allowed})
    return env


def service_message(
    spec: DeploySpec,
    options: CloudRunOptions,
    *,
    image: str,
    env: list[dict[str, Any]],
    as_dict: bool = False,
) -> Any:
    """The Cloud Run v2 ``Service`` (or its dict form for plan.json) for this deploy."""
    body: dict[str, Any] = {
        "labels": {"managed-by": "reward-kit"},
        "ingress": _INGRESS[options.ingress],
        "template": {
            "labels": {"managed-by": "reward-kit"},
            "service_account": options.service_account or "",
            "scaling": {
                "min_instance_count": options.min_instances,
                "max_instance_count": options.max_instances,
            },
            "max_instance_request_concurrency": options.concurrency,
            "timeout": {"seconds": options.timeout},
            "containers": [
                {
                    "image": image,
                    "ports": [{"name": "http1", "container_port": PORT}],
                    "env": env,
                    "resources": {"limits": {"cpu": options.cpu, "memory": options.memory}},
                    "startup_probe": {"http_get": {"path": "/health", "port": PORT}},
                }
            ],
        },
    }
    if spec.auth == "google-iam":
        body["custom_audiences"] = [options.audience]
    if as_dict:
        return body
    run_v2 = require("google.cloud.run_v2", extra="gcp-deploy", feature="gcp-cloud-run")
    return run_v2.Service(body)


def ensure_key_secret(
    client: Any, options: CloudRunOptions, reporter: Reporter
) -> tuple[str | None, str]:
    """Create the key's secret (or reuse it); returns (new key or None, pinned version number).

    The secret holds ``deploy sha256:HEX``, the server's key line; the key itself never leaves
    this machine and is shown once.
    """
    from google.api_core import exceptions

    try:
        with gcp_api("secretmanager", "GetSecret"):
            client.get_secret(name=options.secret_name)
        exists = True
    except DeployError as error:
        if not isinstance(error.__cause__, exceptions.NotFound):
            raise
        exists = False
    if not exists:
        reporter.step(f"creating secret {options.secret_name}")
        with gcp_api("secretmanager", "CreateSecret"):
            client.create_secret(
                request={
                    "parent": f"projects/{options.project}",
                    "secret_id": options.secret_id,
                    "secret": {
                        "replication": {"automatic": {}},
                        "labels": {"managed-by": "reward-kit"},
                    },
                }
            )
    version: str | None = None
    if exists and not options.rotate_key:
        try:
            with gcp_api("secretmanager", "GetSecretVersion"):
                version = client.get_secret_version(
                    name=f"{options.secret_name}/versions/latest"
                ).name
        except DeployError as error:
            if not isinstance(error.__cause__, exceptions.NotFound):
                raise
    new_key = None
    if version is None:
        new_key, line = new_api_key()
        reporter.step(f"adding a new API key version to {options.secret_name}")
        data = line.encode()
        crc32c = require("google_crc32c", extra="gcp-deploy", feature="gcp-cloud-run")
        with gcp_api("secretmanager", "AddSecretVersion"):
            version = client.add_secret_version(
                request={
                    "parent": options.secret_name,
                    "payload": {"data": data, "data_crc32c": int(crc32c.value(data))},
                }
            ).name
    else:
        reporter.step(
            f"keeping the API key in {options.secret_name} (--rotate-key makes a new one)"
        )
    _grant_accessor(client, options, reporter)
    return new_key, str(version).rsplit("/", 1)[-1]


def _grant_accessor(client: Any, options: CloudRunOptions, reporter: Reporter) -> None:
    member = f"serviceAccount:{options.service_account}"
    with gcp_api("secretmanager", "GetIamPolicy"):
        policy = client.get_iam_policy(request={"resource": options.secret_name})
    for binding in policy.bindings:
        if binding.role == SECRET_ACCESSOR and member in binding.members:
            return
    reporter.step(f"granting {SECRET_ACCESSOR} on the secret to {member}")
    policy.bindings.add(role=SECRET_ACCESSOR, members=[member])
    with gcp_api("secretmanager", "SetIamPolicy"):
        client.set_iam_policy(request={"resource": options.secret_name, "policy": policy})


def invoker_policy(policy: Any, members: Sequence[str]) -> None:
    """Make ``roles/run.invoker`` hold exactly ``members`` in ``policy`` (other roles kept)."""
    keep = [b for b in policy.bindings if b.role != INVOKER]
    del policy.bindings[:]
    policy.bindings.extend(keep)
    policy.bindings.add(role=INVOKER, members=list(members))
