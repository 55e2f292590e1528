"""gcp-cloud-run's options: what ``--project``, ``-o KEY=VALUE`` and ``[deploy.gcp-cloud-run]`` say.

>>> CloudRunOptions(project="my-proj-1", max_instances=3).concurrency
16
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator

from ..._options import ContainerOptions, Expect, Given, Strings
from ._identity import check_account
from ._project import WHERE, default_project

__all__ = ["INGRESS", "CloudRunOptions"]

# --ingress -> Cloud Run v2's enum.
INGRESS = {
    "all": "INGRESS_TRAFFIC_ALL",
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
}
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.-]+:[a-z][a-z0-9-]+$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]$")
_MEMBER = re.compile(r"^(user|serviceAccount|group|domain|principal|principalSet):\S+$")


def _project(value: str) -> str:
    if not _PROJECT.match(value):
        raise ValueError(f"{value!r} is not a Google Cloud project ID")
    return value


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(f"{value!r} is not a region like us-central1")
    return value


def _members(value: tuple[str, ...]) -> tuple[str, ...]:
    for member in value:
        if not _MEMBER.match(member):
            raise ValueError(
                f"invoker {member!r} must look like serviceAccount:EMAIL, user:EMAIL, "
                "group:EMAIL or domain:NAME"
            )
    return value


def _account(value: str | None, info: ValidationInfo) -> str | None:
    return None if value is None else check_account(value, str(info.field_name))


def _whole_number_as_text(value: object) -> object:
    # cpu = 2 in TOML means "2"; Cloud Run also takes "0.5" and "1000m".
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Instances = Annotated[int, Field(ge=0, le=1000)]


class CloudRunOptions(ContainerOptions):
    """gcp-cloud-run options; ``project`` is required, everything else has a default.

    Resolved options find the project as Google's client libraries do when no flag or
    reward-kit.toml gives it: ``$GOOGLE_CLOUD_PROJECT``, ``$GCLOUD_PROJECT``, the project of
    the ``$GOOGLE_APPLICATION_CREDENTIALS`` key file, ``$CLOUDSDK_CORE_PROJECT`` or gcloud's
    default project, then the rest of Application Default Credentials.
    ``service_account`` (the runtime identity) defaults to ``rk-NAME@PROJECT``, made with no
    roles; ``build_service_account`` is who Cloud Build runs as (default: the project's).
    """

    target: ClassVar[str] = "gcp-cloud-run"
    environment: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "project": ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")
    }
    discovered: ClassVar[Mapping[str, str]] = {"project": WHERE}

    project: Annotated[str, AfterValidator(_project)]
    region: Annotated[str, AfterValidator(_region)] = "us-central1"
    repository: str = "reward-kit"
    invokers: Annotated[Strings, AfterValidator(_members)] = ()
    memory: Annotated[str, Expect("a string like 512Mi or 1Gi")] = "1Gi"
    cpu: Annotated[str, BeforeValidator(_whole_number_as_text), Expect("a CPU count")] = "1"
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 16
    min_instances: Instances = 0
    max_instances: Annotated[int, Field(ge=1, le=1000)] = 10
    timeout: Annotated[int, Field(ge=1, le=3600)] = 300
    ingress: Literal["all", "internal", "internal-and-cloud-load-balancing"] = "all"
    service_account: Annotated[str | None, AfterValidator(_account)] = None
    build_service_account: Annotated[str | None, AfterValidator(_account)] = None
    image: str | None = None
    source_bucket: str | None = None
    rotate_key: bool = False

    @classmethod
    def discover(cls, key: str, environ: Mapping[str, str]) -> Given | None:
        return default_project(environ) if key == "project" else None

    @model_validator(mode="after")
    def _scaling(self) -> CloudRunOptions:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) is above max_instances "
                f"({self.max_instances})"
            )
        return self
