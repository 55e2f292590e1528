"""The image half of gcp-cloud-run: Artifact Registry repository, source upload, Cloud Build.

This is what ``gcloud builds submit`` does, with the client libraries: tar the build context,
upload it to ``gs://PROJECT_cloudbuild/source/``, build and push with Cloud Build.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...._extras import require
from ..._errors import DeployError
from ..._spec import PlannedCall, Reporter
from ._clients import GcpClients, gcp_api

__all__ = ["ImageBuild", "context_tarball"]

DOCKER_BUILDER = "gcr.io/cloud-builders/docker"


def context_tarball(context: Path) -> bytes:
    """The build context as a reproducible .tar.gz (sorted, zero times and owners).

    Same context in, same bytes out, so the image tag (its hash) only changes with the code.
    """
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(context.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(context).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return raw.getvalue()


@dataclass(frozen=True, kw_only=True)
class ImageBuild:
    """Where the image of one deploy goes and how it is built.

    >>> b = ImageBuild(project="p", region="us-central1", repository="rk", name="svc",
    ...                tarball=b"x", bucket=None)
    >>> b.image.startswith("us-central1-docker.pkg.dev/p/rk/svc:")
    True
    """

    project: str
    region: str
    repository: str
    name: str
    tarball: bytes
    bucket: str | None
    # Who the build runs as; None is the project's default build account (see docs/deploy.md).
    service_account: str | None = None

    @property
    def tag(self) -> str:
        return hashlib.sha256(self.tarball).hexdigest()[:16]

    @property
    def image(self) -> str:
        host = f"{self.region}-docker.pkg.dev"
        return f"{host}/{self.project}/{self.repository}/{self.name}:{self.tag}"

    @property
    def source_bucket(self) -> str:
        # gcloud's default staging bucket, so users who ran `gcloud builds submit` share it.
        return self.bucket or f"{self.project}_cloudbuild"

    @property
    def source_object(self) -> str:
        return f"source/reward-kit-{self.name}-{self.tag}.tar.gz"

    @property
    def repository_name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/repositories/{self.repository}"

    def build_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {
            "source": {
                "storage_source": {"bucket": self.source_bucket, "object_": self.source_object}
            },
            "steps": [{"name": DOCKER_BUILDER, "args": ["build", "-t", self.image, "."]}],
            "images": [self.image],
            "tags": ["reward-kit", self.name],
        }
        if self.service_account:
            # A build with its own account must say where its logs go (Cloud Logging here).
            account = f"projects/{self.project}/serviceAccounts/{self.service_account}"
            request |= {"service_account": account, "options": {"logging": "CLOUD_LOGGING_ONLY"}}
        return request

    def plan(self) -> list[PlannedCall]:
        parent = f"projects/{self.project}/locations/{self.region}"
        return [
            PlannedCall(
                service="artifactregistry",
                method="GetRepository/CreateRepository",
                summary=f"ensure Docker repository {self.repository_name}",
                request={"parent": parent, "repository_id": self.repository, "format": "DOCKER"},
            ),
            PlannedCall(
                service="storage",
                method="objects.insert",
                summary=f"upload the build context to gs://{self.source_bucket}/"
                f"{self.source_object} ({len(self.tarball)} bytes)",
                request={"bucket": self.source_bucket, "name": self.source_object},
            ),
            PlannedCall(
                service="cloudbuild",
                method="CreateBuild",
                summary=f"build and push {self.image}",
                request={"project_id": self.project, "build": self.build_request()},
            ),
        ]

    def run(self, clients: GcpClients, reporter: Reporter, *, timeout: float) -> str:
        """Ensure the repository, upload, build; return the pushed image (by digest if known)."""
        self._ensure_repository(clients, reporter, timeout=timeout)
        reporter.step(f"uploading build context to gs://{self.source_bucket}/{self.source_object}")
        with gcp_api("storage", "upload"):
            gcs = clients.storage(self.project)
            bucket = gcs.lookup_bucket(self.source_bucket)
            if bucket is None:
                bucket = gcs.create_bucket(self.source_bucket, location=self.region)
            bucket.blob(self.source_object).upload_from_string(
                self.tarball, content_type="application/gzip"
            )
        reporter.step(f"building {self.image} with Cloud Build")
        cb = require("google.cloud.devtools.cloudbuild_v1", extra="gcp-deploy", feature="deploy")
        with gcp_api("cloudbuild", "CreateBuild"):
            operation = clients.build().create_build(
                project_id=self.project, build=cb.Build(self.build_request())
            )
            build = operation.result(timeout=timeout)
        if build.status != cb.Build.Status.SUCCESS:
            raise DeployError(
                f"Cloud Build {build.id} ended {build.status.name}: {build.status_detail}"
                f" (logs: {build.log_url})"
            )
        for built in build.results.images:
            if built.digest and built.name == self.image:
                return f"{self.image.rsplit(':', 1)[0]}@{built.digest}"
        return self.image

    def _ensure_repository(
        self, clients: GcpClients, reporter: Reporter, *, timeout: float
    ) -> None:
        from google.api_core import exceptions

        ar = require("google.cloud.artifactregistry_v1", extra="gcp-deploy", feature="deploy")
        registry = clients.registry()
        try:
            with gcp_api("artifactregistry", "GetRepository"):
                registry.get_repository(name=self.repository_name)
            return
        except DeployError as error:
            if not isinstance(error.__cause__, exceptions.NotFound):
                raise
        reporter.step(f"creating Artifact Registry repository {self.repository_name}")
        repository = ar.Repository(
            format_=ar.Repository.Format.DOCKER,
            description="reward-kit evaluators",
            labels={"managed-by": "reward-kit"},
        )
        with gcp_api("artifactregistry", "CreateRepository"):
            registry.create_repository(
                parent=self.repository_name.rsplit("/repositories/", 1)[0],
                repository=repository,
                repository_id=self.repository,
            ).result(timeout=timeout)
