"""What a gcp-cloud-run deploy would call, for ``--dry-run``'s plan.json."""

from __future__ import annotations

from ..._spec import DeploySpec, PlannedCall
from ._image_build import ImageBuild
from ._key_secret import SECRET_ACCESSOR
from ._service import INVOKER, CloudRunService, service_env, service_message

__all__ = ["plan_calls"]


def plan_calls(
    spec: DeploySpec, service: CloudRunService, build: ImageBuild | None
) -> list[PlannedCall]:
    """The calls in order: image build, runtime account, key secret, service, invokers."""
    calls = build.plan() if build else []
    if service.options.service_account is None:
        calls.append(
            PlannedCall(
                service="iam",
                method="GetServiceAccount/CreateServiceAccount",
                summary=f"the service runs as {service.service_account} (created with no "
                "roles when missing)",
                request={"account_id": service.service_account.split("@", 1)[0]},
            )
        )
    if spec.auth == "api-key":
        calls += _key_calls(service)
    image = build.image if build else str(service.options.image)
    env = service_env(spec.auth, service, audiences=["<service URL>"], secret_version="N")
    members = service.invoker_members(spec.auth)
    return [
        *calls,
        PlannedCall(
            service="run",
            method="GetService/CreateService|UpdateService",
            summary=f"create or update service {service.service_name}",
            request=service_message(spec, service, image=image, env=env, as_dict=True),
        ),
        PlannedCall(
            service="run",
            method="SetIamPolicy",
            summary=f"{INVOKER} for {', '.join(members)}",
            request={
                "resource": service.service_name,
                "binding": {"role": INVOKER, "members": members},
            },
        ),
    ]


def _key_calls(service: CloudRunService) -> list[PlannedCall]:
    return [
        PlannedCall(
            service="secretmanager",
            method="GetSecret/CreateSecret+AddSecretVersion",
            summary=f"store the API key's hash in secret {service.secret_name}"
            " (a new key is made on first deploy or with --rotate-key)",
            request={"secret_id": service.secret_id, "payload": {"data": "<new key>"}},
        ),
        PlannedCall(
            service="secretmanager",
            method="SetIamPolicy",
            summary=f"let {service.service_account} read that secret",
            request={
                "resource": service.secret_name,
                "binding": {
                    "role": SECRET_ACCESSOR,
                    "members": [f"serviceAccount:{service.service_account}"],
                },
            },
        ),
    ]
