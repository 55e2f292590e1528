"""Google Cloud clients for one deploy, and the error every Google API answer becomes.

Every client shares one credential and, in tests, one endpoint (the local REST fake).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ...._extras import require
from ..._errors import DeployError

__all__ = ["GcpClients", "gcp_api"]

T = TypeVar("T")


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
