"""The image half of gcp-cloud-run: Artifact Registry repository, source upload, Cloud Build.

This is what ``gcloud builds submit`` does, with the client libraries: tar the build context,
upload it to ``gs://PROJECT_cloudbuild/source/``, build and push with Cloud Build.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .._extras import require
from ._common import DeployError
from ._target import PlannedCall, Reporter

__all__ = ["GcpClients", "ImageBuild", "context_tarball", "gcp_api"]

T = TypeVar("T")
DOCKER_BUILDER = "gcr.io/cloud-builders/docker"


@contextmanager
def gcp_api(service: str, method: str) -> Iterator[None]:
    """Turn a Google API error into a DeployError that repeats the API's own answer."""
    from google.api_core import exceptions

    try:
        yield
    except exceptions.GoogleAPIError as error:
        raise DeployError(f"{service} {method} failed: {error}") from error


class GcpClients:
    """Lazily built Google clients sharing one credential and (in tests) one endpoint.

    >>> GcpClients(endpoint="http://127.0.0.1:9").endpoint
    'http://127.0.0.1:9'
    """

    def __init__(self, *, credentials: Any = None, endpoint: str | None = None) -> None:
        self.credentials = credentials
        self.endpoint = endpoint
        self._made: dict[str, Any] = {}

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"credentials": self.credentials}
        if self.endpoint:
            # REST lets an http:// endpoint through (gRPC would need a channel of its own).
            options.update(transport="rest", client_options={"api_endpoint": self.endpoint})
        return options

    def _get(self, key: str, make: Callable[[], T]) -> T:
        if key not in self._made:
            self._made[key] = make()
        client: T = self._made[key]
        return client

    def run(self) -> Any:
        run_v2 = require("google.cloud.run_v2", extra="gcp-deploy", feature="gcp-cloud-run")
        return self._get("run", lambda: run_v2.ServicesClient(**self._options()))

    def secrets(self) -> Any:
        sm = require("google.cloud.secretmanager", extra="gcp-deploy", feature="gcp-cloud-run")
        return self._get("sm", lambda: sm.SecretManagerServiceClient(**self._options()))

    def registry(self) -> Any:
        ar = require("google.cloud.artifactregistry_v1", extra="gcp-deploy", feature="rk deploy")
        return self._get("ar", lambda: ar.ArtifactRegistryClient(**self._options()))

    def build(self) -> Any:
        cb = require("google.cloud.devtools.cloudbuild_v1", extra="gcp-deploy", feature="rk deploy")
        return self._get("cb", lambda: cb.CloudBuildClient(**self._options()))

    def storage(self, project: str) -> Any:
        storage = require("google.cloud.storage", extra="gcp-deploy", feature="rk deploy")
        options: dict[str, Any] = {"project": project, "credentials": self.credentials}
        if self.endpoint:
            options["client_options"] = {"api_endpoint": self.endpoint}
        return self._get("gcs", lambda: storage.Client(**options))


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
        return {
            "source": {
                "storage_source": {"bucket": self.source_bucket, "object_": self.source_object}
            },
            "steps": [{"name": DOCKER_BUILDER, "args": ["build", "-t", self.image, "."]}],
            "images": [self.image],
            "tags": ["reward-kit", self.name],
        }

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
