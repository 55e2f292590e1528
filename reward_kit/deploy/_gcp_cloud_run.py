"""``gcp-cloud-run``: build with Cloud Build, key in Secret Manager, service on Cloud Run v2.

    >>> target = CloudRunTarget()  # Application Default Credentials, the real endpoints
    >>> target.name
    'gcp-cloud-run'

Tests pass ``credentials=AnonymousCredentials()`` and ``endpoint="http://127.0.0.1:PORT"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._errors import ConfigurationError
from .._extras import require
from ._common import DeployError, sdk_snippet
from ._gcp_build import GcpClients, ImageBuild, context_tarball, gcp_api
from ._gcp_parts import (
    INVOKER,
    CloudRunOptions,
    ensure_key_secret,
    invoker_policy,
    service_env,
    service_message,
)
from ._target import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter

__all__ = ["CloudRunTarget"]


class CloudRunTarget:
    """Deploys an evaluator image as a Cloud Run service; re-running updates it in place."""

    name: ClassVar[str] = "gcp-cloud-run"

    def __init__(
        self, *, credentials: Any = None, endpoint: str | None = None, timeout: float = 1200.0
    ) -> None:
        self._clients = GcpClients(credentials=credentials, endpoint=endpoint)
        self._timeout = timeout

    # -- validation (no cloud call) -------------------------------------------------------

    def check(self, spec: DeploySpec) -> None:
        CloudRunOptions.from_spec(spec)
        if not spec.options.get("dry_run"):  # a plan needs no credentials
            self._ensure_credentials()

    def _ensure_credentials(self) -> None:
        if self._clients.credentials is not None:
            return
        google_auth = require("google.auth", extra="gcp-deploy", feature="gcp-cloud-run")
        exceptions = require("google.auth.exceptions", extra="gcp-deploy", feature="gcp-cloud-run")
        try:
            self._clients.credentials, _ = google_auth.default(
                scopes=["https://www.googleapis.com/auth/cloud-platform"]
            )
        except exceptions.DefaultCredentialsError as error:
            raise ConfigurationError(
                "gcp-cloud-run: no Google credentials found. Run `gcloud auth "
                "application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service "
                f"account key file ({error})"
            ) from None

    # -- plan / deploy --------------------------------------------------------------------

    def _image_build(self, spec: DeploySpec, artifacts: Artifacts) -> ImageBuild | None:
        options = CloudRunOptions.from_spec(spec)
        if options.image is not None:
            return None
        if artifacts.docker_context is None:
            raise ConfigurationError("gcp-cloud-run needs a Docker build context (rk build)")
        return ImageBuild(
            project=options.project,
            region=options.region,
            repository=options.repository,
            name=spec.name,
            tarball=context_tarball(artifacts.docker_context),
            bucket=options.source_bucket,
        )

    def plan(self, spec: DeploySpec, artifacts: Artifacts) -> Sequence[PlannedCall]:
        options = CloudRunOptions.from_spec(spec)
        build = self._image_build(spec, artifacts)
        image = build.image if build else str(options.image)
        calls = build.plan() if build else []
        if build is not None:
            (artifacts.out_dir / "source.tar.gz").write_bytes(build.tarball)
        if spec.auth == "api-key":
            calls += [
                PlannedCall(
                    service="secretmanager",
                    method="GetSecret/CreateSecret+AddSecretVersion",
                    summary=f"store the API key's hash in secret {options.secret_name}"
                    " (a new key is made on first deploy or with --rotate-key)",
                    request={"secret_id": options.secret_id, "payload": {"data": "<new key>"}},
                ),
                PlannedCall(
                    service="secretmanager",
                    method="SetIamPolicy",
                    summary=f"let {options.service_account} read that secret",
                    request={
                        "resource": options.secret_name,
                        "binding": {
                            "role": "roles/secretmanager.secretAccessor",
                            "members": [f"serviceAccount:{options.service_account}"],
                        },
                    },
                ),
            ]
        env = service_env(spec.auth, options, audiences=["<service URL>"], secret_version="N")
        calls += [
            PlannedCall(
                service="run",
                method="GetService/CreateService|UpdateService",
                summary=f"create or update service {options.service_name}",
                request=service_message(spec, options, image=image, env=env, as_dict=True),
            ),
            PlannedCall(
                service="run",
                method="SetIamPolicy",
                summary=f"{INVOKER} for {', '.join(options.invoker_members(spec.auth))}",
                request={
                    "resource": options.service_name,
                    "binding": {"role": INVOKER, "members": options.invoker_members(spec.auth)},
                },
            ),
        ]
        return calls

    def deploy(self, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter) -> Deployment:
        options = CloudRunOptions.from_spec(spec)
        self._ensure_credentials()
        build = self._image_build(spec, artifacts)
        image = (
            build.run(self._clients, reporter, timeout=self._timeout) if build else options.image
        )
        assert image is not None
        new_key, version = None, None
        if spec.auth == "api-key":
            new_key, version = ensure_key_secret(self._clients.secrets(), options, reporter)
        service, created = self._upsert(spec, options, image=str(image), secret_version=version)
        url = str(service.uri)
        self._set_invokers(spec, options, reporter)
        reporter.step(f"service {spec.name} is ready at {url}")
        details: dict[str, Any] = {
            "service": options.service_name,
            "image": str(image),
            "created": created,
            "revision": str(service.latest_ready_revision),
        }
        if new_key is not None:
            details["api_key"] = new_key
        return Deployment(
            url=url, auth=spec.auth, sdk_snippet=sdk_snippet(url, spec.auth), details=details
        )

    def _upsert(
        self, spec: DeploySpec, options: CloudRunOptions, *, image: str, secret_version: str | None
    ) -> tuple[Any, bool]:
        from google.api_core import exceptions

        client = self._clients.run()
        try:
            with gcp_api("run", "GetService"):
                existing = client.get_service(name=options.service_name)
        except DeployError as error:
            if not isinstance(error.__cause__, exceptions.NotFound):
                raise
            existing = None
        # google-iam: the server checks the token's audience against the service URL, which
        # exists only once the service does; a new service therefore gets a second revision.
        audiences = _urls(existing) if existing is not None else []
        env = service_env(spec.auth, options, audiences=audiences, secret_version=secret_version)
        fresh = service_message(spec, options, image=image, env=env)
        if existing is None:
            with gcp_api("run", "CreateService"):
                service = client.create_service(
                    parent=options.parent, service=fresh, service_id=spec.name
                ).result(timeout=self._timeout)
            created = True
        else:
            fresh.name, fresh.etag = existing.name, existing.etag
            with gcp_api("run", "UpdateService"):
                service = client.update_service(service=fresh).result(timeout=self._timeout)
            created = False
        if spec.auth == "google-iam" and _urls(service) != audiences:
            env = service_env(
                spec.auth, options, audiences=_urls(service), secret_version=secret_version
            )
            again = service_message(spec, options, image=image, env=env)
            again.name, again.etag = service.name, service.etag
            with gcp_api("run", "UpdateService"):
                service = client.update_service(service=again).result(timeout=self._timeout)
        return service, created

    def _set_invokers(self, spec: DeploySpec, options: CloudRunOptions, reporter: Reporter) -> None:
        client = self._clients.run()
        members = options.invoker_members(spec.auth)
        reporter.step(f"granting {INVOKER} to {', '.join(members)}")
        with gcp_api("run", "GetIamPolicy"):
            policy = client.get_iam_policy(request={"resource": options.service_name})
        invoker_policy(policy, members)
        with gcp_api("run", "SetIamPolicy"):
            client.set_iam_policy(request={"resource": options.service_name, "policy": policy})

    # -- status / delete ------------------------------------------------------------------

    def _options(self, name: str, options: Mapping[str, Any]) -> CloudRunOptions:
        spec = DeploySpec(name=name, sources=("-",), auth="none", options=options)
        return CloudRunOptions.from_spec(spec)

    def status(self, name: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
        opts = self._options(name, options)
        self._ensure_credentials()
        with gcp_api("run", "GetService"):
            service = self._clients.run().get_service(name=opts.service_name)
        run_v2 = require("google.cloud.run_v2", extra="gcp-deploy", feature="gcp-cloud-run")
        condition = service.terminal_condition
        container = service.template.containers[0] if service.template.containers else None
        return {
            "service": opts.service_name,
            "url": service.uri,
            "ready": condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED,
            "condition": condition.message or condition.state.name,
            "revision": service.latest_ready_revision,
            "image": container.image if container else None,
            "max_instances": service.template.scaling.max_instance_count,
            "concurrency": service.template.max_instance_request_concurrency,
        }

    def delete(self, name: str, options: Mapping[str, Any], reporter: Reporter) -> None:
        from google.api_core import exceptions

        opts = self._options(name, options)
        self._ensure_credentials()
        reporter.step(f"deleting service {opts.service_name}")
        try:
            with gcp_api("run", "DeleteService"):
                self._clients.run().delete_service(name=opts.service_name).result(
                    timeout=self._timeout
                )
        except DeployError as error:
            if not isinstance(error.__cause__, exceptions.NotFound):
                raise
            reporter.step("no such service (already deleted)")
        reporter.step(f"deleting secret {opts.secret_name}")
        try:
            with gcp_api("secretmanager", "DeleteSecret"):
                self._clients.secrets().delete_secret(name=opts.secret_name)
        except DeployError as error:
            if not isinstance(error.__cause__, exceptions.NotFound):
                raise
            reporter.step("no such secret")
        reporter.step(
            f"images stay in {opts.region}-docker.pkg.dev/{opts.project}/{opts.repository}/"
            f"{name} (see docs/deploy.md to delete them)"
        )


def _urls(service: Any) -> list[str]:
    return list(dict.fromkeys([str(service.uri), *service.urls])) if service.uri else []
