"""The API key's secret in Secret Manager, readable by the service's own account only.

The secret holds ``deploy sha256:HEX``, the server's key line; the key itself never leaves
this machine and is shown to the user once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...._extras import require
from ..._api_key import new_api_key
from ..._errors import DeployError
from ..._spec import Reporter
from ._clients import gcp_api
from ._service import CloudRunService

__all__ = ["SECRET_ACCESSOR", "ensure_key_secret"]

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
Retry = Callable[[Callable[[], Any]], Any]


def ensure_key_secret(
    client: Any,
    service: CloudRunService,
    reporter: Reporter,
    *,
    retry: Retry = lambda call: call(),
) -> tuple[str | None, str]:
    """Create the key's secret (or reuse it); returns (new key or None, pinned version number).

    A new key is made on the first deploy and with ``rotate_key``; otherwise the latest
    version is kept, so existing clients keep working.
    """
    exists, _ = _lookup(lambda: client.get_secret(name=service.secret_name), "GetSecret")
    if not exists:
        _create_secret(client, service, reporter)
    version = None
    if exists and not service.options.rotate_key:
        latest = f"{service.secret_name}/versions/latest"
        found, answer = _lookup(lambda: client.get_secret_version(name=latest), "GetSecretVersion")
        version = answer.name if found else None
    new_key = None
    if version is None:
        new_key, version = _add_version(client, service, reporter)
    else:
        reporter.step(
            f"keeping the API key in {service.secret_name} (--rotate-key makes a new one)"
        )
    _grant_accessor(client, service, reporter, retry)
    return new_key, str(version).rsplit("/", 1)[-1]


def _lookup(call: Callable[[], Any], method: str) -> tuple[bool, Any]:
    """(True, ``call()``'s answer), or (False, None) when Secret Manager says NotFound."""
    from google.api_core import exceptions

    try:
        with gcp_api("secretmanager", method):
            return True, call()
    except DeployError as error:
        if not isinstance(error.__cause__, exceptions.NotFound):
            raise
        return False, None


def _create_secret(client: Any, service: CloudRunService, reporter: Reporter) -> None:
    reporter.step(f"creating secret {service.secret_name}")
    with gcp_api("secretmanager", "CreateSecret"):
        client.create_secret(
            request={
                "parent": f"projects/{service.project}",
                "secret_id": service.secret_id,
                "secret": {
                    "replication": {"automatic": {}},
                    "labels": {"managed-by": "reward-kit"},
                },
            }
        )


def _add_version(client: Any, service: CloudRunService, reporter: Reporter) -> tuple[str, str]:
    """A new key; its hash becomes the secret's latest version. Returns (key, version name)."""
    new_key, line = new_api_key()
    reporter.step(f"adding a new API key version to {service.secret_name}")
    data = line.encode()
    crc32c = require("google_crc32c", extra="gcp-deploy", feature="gcp-cloud-run")
    with gcp_api("secretmanager", "AddSecretVersion"):
        version = client.add_secret_version(
            request={
                "parent": service.secret_name,
                "payload": {"data": data, "data_crc32c": int(crc32c.value(data))},
            }
        ).name
    return new_key, str(version)


def _grant_accessor(
    client: Any, service: CloudRunService, reporter: Reporter, retry: Retry
) -> None:
    member = f"serviceAccount:{service.service_account}"
    with gcp_api("secretmanager", "GetIamPolicy"):
        policy = client.get_iam_policy(request={"resource": service.secret_name})
    for binding in policy.bindings:
        if binding.role == SECRET_ACCESSOR and member in binding.members:
            return
    reporter.step(f"granting {SECRET_ACCESSOR} on the secret to {member}")
    policy.bindings.add(role=SECRET_ACCESSOR, members=[member])

    def set_policy() -> Any:
        with gcp_api("secretmanager", "SetIamPolicy"):
            return client.set_iam_policy(
                request={"resource": service.secret_name, "policy": policy}
            )

    retry(set_policy)
