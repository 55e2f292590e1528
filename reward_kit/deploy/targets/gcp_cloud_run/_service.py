"""The Cloud Run service of one deploy: its names, environment, message and invoker policy.

>>> service = CloudRunService(name="math", options=CloudRunOptions(project="my-proj-1"))
>>> service.service_name
'projects/my-proj-1/locations/us-central1/services/math'
>>> service.service_account
'rk-math@my-proj-1.iam.gserviceaccount.com'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...._extras import require
from ..._spec import DeploySpec
from ._identity import default_account
from ._options import INGRESS, CloudRunOptions

__all__ = [
    "INVOKER",
    "PORT",
    "CloudRunService",
    "invoker_policy",
    "service_env",
    "service_message",
]

INVOKER = "roles/run.invoker"
PORT = 8080
_EMAIL_MEMBER = re.compile(r"^(user|serviceAccount):(\S+@\S+)$")


@dataclass(frozen=True, kw_only=True)
class CloudRunService:
    """The options of one deploy with the names derived from them."""

    name: str
    options: CloudRunOptions
    # The image runs the code rewards' bubblewrap sandbox: use the gen2 execution environment.
    sandbox: bool = False

    @property
    def project(self) -> str:
        return self.options.project

    @property
    def service_account(self) -> str:
        """The runtime identity: given, or rk-NAME@PROJECT (made by the deploy when missing)."""
        return self.options.service_account or default_account(self.name, self.project)

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.options.region}"

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
        return f"reward-kit:{self.project}:{self.options.region}:{self.name}"

    def invoker_members(self, auth: str) -> list[str]:
        # google-iam: only the given members. api-key/none: anyone reaches the app, which then
        # checks the key (or, for none, was explicitly asked to be open).
        return list(self.options.invokers) if auth == "google-iam" else ["allUsers"]


def service_env(
    auth: str, service: CloudRunService, *, audiences: Sequence[str], secret_version: str | None
) -> list[dict[str, Any]]:
    """The evaluator's RK_* environment for ``auth``; the key only ever as a secret reference."""
    if auth == "none":
        # Public by the operator's explicit choice: answer the service's own Host names too
        # (without auth, rk-serve answers only loopback Hosts, against DNS rebinding).
        return [
            {"name": "RK_ALLOW_UNAUTHENTICATED", "value": "true"},
            {"name": "RK_ALLOWED_HOSTS", "value": "*"},
        ]
    env: list[dict[str, Any]] = [{"name": "RK_AUTH", "value": auth}]
    if auth == "api-key":
        ref = {"secret": service.secret_id, "version": secret_version or "latest"}
        env.append({"name": "RK_API_KEYS", "value_source": {"secret_key_ref": ref}})
    elif auth == "google-iam":
        every = [service.audience, *audiences]
        env.append({"name": "RK_GOOGLE_AUDIENCES", "value": ",".join(dict.fromkeys(every))})
        emails = [_EMAIL_MEMBER.match(m) for m in service.options.invokers]
        # Groups and domains cannot be checked by email here; then Cloud Run's IAM is the gate.
        if all(emails):
            allowed = ",".join(m.group(2) for m in emails if m)
            env.append({"name": "RK_GOOGLE_ALLOWED_EMAILS", "value": allowed})
    return env


def service_message(
    spec: DeploySpec,
    service: CloudRunService,
    *,
    image: str,
    env: list[dict[str, Any]],
    as_dict: bool = False,
) -> Any:
    """The Cloud Run v2 ``Service`` (or its dict form for plan.json) for this deploy."""
    options = service.options
    body: dict[str, Any] = {
        "labels": {"managed-by": "reward-kit"},
        "ingress": INGRESS[options.ingress],
        "template": {
            "labels": {"managed-by": "reward-kit"},
            "service_account": service.service_account,
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
        body["custom_audiences"] = [service.audience]
    if service.sandbox:
        # bubblewrap needs user namespaces and a /proc it may mount: a full Linux kernel
        # (gen2, a microVM) rather than gen1's gVisor. Not verified offline: see docs/deploy.md.
        body["template"]["execution_environment"] = "EXECUTION_ENVIRONMENT_GEN2"
    if as_dict:
        return body
    run_v2 = require("google.cloud.run_v2", extra="gcp-deploy", feature="gcp-cloud-run")
    return run_v2.Service(body)


def invoker_policy(policy: Any, members: Sequence[str]) -> None:
    """Make ``roles/run.invoker`` hold exactly ``members`` in ``policy`` (other roles kept)."""
    keep = [b for b in policy.bindings if b.role != INVOKER]
    del policy.bindings[:]
    policy.bindings.extend(keep)
    policy.bindings.add(role=INVOKER, members=list(members))
