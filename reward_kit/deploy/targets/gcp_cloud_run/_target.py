"""``gcp-cloud-run``: build with Cloud Build, key in Secret Manager, service on Cloud Run v2.

    >>> target = CloudRunTarget()  # Application Default Credentials, the real endpoints
    >>> target.name, target.artifact.value
    ('gcp-cloud-run', 'docker')

Tests pass ``credentials=AnonymousCredentials()`` and ``endpoint="http://127.0.0.1:PORT"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ...._errors import ConfigurationError
from ...._extras import require
from ..._errors import DeployError
from ..._guards import check_auth_options
from ..._names import ArtifactKind
from ..._options import TargetOptions
from ..._sdk_snippet import sdk_snippet
from ..._spec import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter
from ._clients import GcpClients, gcp_api
from ._identity import ensure_service_account, retry_new_account
from ._image_build import ImageBuild, context_tarball
from ._key_secret import ensure_key_secret
from ._options import CloudRunOptions
from ._plan import plan_calls
from ._service import INVOKER, CloudRunService, invoker_policy, service_env, service_message

__all__ = ["CloudRunTarget"]


class CloudRunTarget:
    """Deploys an evaluator image as a Cloud Run service; re-running updates it in place."""

    name: ClassVar[str] = "gcp-cloud-run"
    public: ClassVar[bool] = True
    options_model: ClassVar[type[CloudRunOptions]] = CloudRunOptions
    artifact: ClassVar[ArtifactKind] = ArtifactKind.DOCKER

    def __init__(
        self,
        *,
        credentials: Any = None,
        endpoint: str | None = None,
        timeout: float = 1200.0,
        account_retry_delay: float = 3.0,
    ) -> None:
        self._clients = GcpClients(credentials=credentials, endpoint=endpoint)
        self._timeout = timeout
        self._account_retry_delay = account_retry_delay

    # -- validation (no cloud call) -------------------------------------------------------

    def _service(self, spec: DeploySpec, artifacts: Artifacts | None = None) -> CloudRunService:
        options = CloudRunOptions.coerce(spec.options)
        check_auth_options(spec, self, invokers=options.invokers)
        if spec.auth in ("mtls", "aws-iam"):
            raise ConfigurationError(
                f"gcp-cloud-run does not support --auth {spec.auth}: Google's front end "
                "terminates TLS and authenticates with Google identities; use api-key or google-iam"
            )
        if spec.auth == "google-iam" and not options.invokers:
            raise ConfigurationError(
                "gcp-cloud-run --auth google-iam needs at least one --invoker "
                "(e.g. serviceAccount:trainer@PROJECT.iam.gserviceaccount.com)"
            )
        sandbox = artifacts is not None and artifacts.sandbox
        return CloudRunService(name=spec.name, options=options, sandbox=sandbox)

    def check(self, spec: DeploySpec, *, dry_run: bool = False) -> None:
        self._service(spec)
        if not dry_run:  # a plan needs no credentials
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

    def _image_build(self, service: CloudRunService, artifacts: Artifacts) -> ImageBuild | None:
        options = service.options
        if options.image is not None:
            return None
        if artifacts.docker_context is None:
            raise ConfigurationError("gcp-cloud-run needs a Docker build context (rk build)")
        return ImageBuild(
            project=options.project,
            region=options.region,
            repository=options.repository,
            name=service.name,
            tarball=context_tarball(artifacts.docker_context),
            bucket=options.source_bucket,
            service_account=options.build_service_account,
        )

    def plan(self, spec: DeploySpec, artifacts: Artifacts) -> Sequence[PlannedCall]:
        service = self._service(spec, artifacts)
        build = self._image_build(service, artifacts)
        if build is not None:
            (artifacts.out_dir / "source.tar.gz").write_bytes(build.tarball)
        return plan_calls(spec, service, build)

    def deploy(self, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter) -> Deployment:
        service = self._service(spec, artifacts)
        self._ensure_credentials()
        retry = self._account_retry(service, reporter)
        build = self._image_build(service, artifacts)
        image = build.run(self._clients, reporter, timeout=self._timeout) if build else None
        image = image or str(service.options.image)
        new_key, version = None, None
        if spec.auth == "api-key":
            secrets = self._clients.secrets()
            new_key, version = ensure_key_secret(secrets, service, reporter, retry=retry)
        running, created = retry(
            lambda: self._upsert(spec, service, image=image, secret_version=version)
        )
        url = str(running.uri)
        self._set_invokers(spec, service, reporter)
        reporter.step(f"service {spec.name} is ready at {url}")
        details: dict[str, Any] = {
            "service": service.service_name,
            "service_account": service.service_account,
            "image": image,
            "created": created,
            "revision": str(running.latest_ready_revision),
        }
        if new_key is not None:
            details["api_key"] = new_key
        return Deployment(
            url=url, auth=spec.auth, sdk_snippet=sdk_snippet(url, spec.auth), details=details
        )

    def _account_retry(
        self, service: CloudRunService, reporter: Reporter
    ) -> Callable[[Callable[[], Any]], Any]:
        """Make the runtime account when missing; then a retry of calls that name it."""
        fresh = False
        if service.options.service_account is None:
            fresh = ensure_service_account(
                self._clients, service.project, service.service_account, service.name, reporter
            )

        def retry(call: Callable[[], Any]) -> Any:
            return retry_new_account(
                call, service.service_account, fresh=fresh, delay=self._account_retry_delay
            )

        return retry

    def _upsert(
        self, spec: DeploySpec, service: CloudRunService, *, image: str, secret_version: str | None
    ) -> tuple[Any, bool]:
        client = self._clients.run()
        existing = _get_service(client, service.service_name)
        # google-iam: the server checks the token's audience against the service URL, which
        # exists only once the service does; a new service therefore gets a second revision.
        audiences = _urls(existing) if existing is not None else []

        def message(audiences: list[str], current: Any) -> Any:
            env = service_env(
                spec.auth, service, audiences=audiences, secret_version=secret_version
            )
            fresh = service_message(spec, service, image=image, env=env)
            if current is not None:
                fresh.name, fresh.etag = current.name, current.etag
            return fresh

        if existing is None:
            with gcp_api("run", "CreateService"):
                running = client.create_service(
                    parent=service.parent, service=message(audiences, None), service_id=spec.name
                ).result(timeout=self._timeout)
        else:
            running = self._update(client, message(audiences, existing))
        if spec.auth == "google-iam" and _urls(running) != audiences:
            running = self._update(client, message(_urls(running), running))
        return running, existing is None

    def _update(self, client: Any, message: Any) -> Any:
        with gcp_api("run", "UpdateService"):
            return client.update_service(service=message).result(timeout=self._timeout)

    def _set_invokers(self, spec: DeploySpec, service: CloudRunService, reporter: Reporter) -> None:
        client = self._clients.run()
        members = service.invoker_members(spec.auth)
        reporter.step(f"granting {INVOKER} to {', '.join(members)}")
        with gcp_api("run", "GetIamPolicy"):
            policy = client.get_iam_policy(request={"resource": service.service_name})
        invoker_policy(policy, members)
        with gcp_api("run", "SetIamPolicy"):
            client.set_iam_policy(request={"resource": service.service_name, "policy": policy})

    # -- status / delete ------------------------------------------------------------------

    def status(self, name: str, options: TargetOptions) -> Mapping[str, Any]:
        service = CloudRunService(name=name, options=CloudRunOptions.coerce(options))
        self._ensure_credentials()
        with gcp_api("run", "GetService"):
            running = self._clients.run().get_service(name=service.service_name)
        run_v2 = require("google.cloud.run_v2", extra="gcp-deploy", feature="gcp-cloud-run")
        condition = running.terminal_condition
        container = running.template.containers[0] if running.template.containers else None
        return {
            "service": service.service_name,
            "url": running.uri,
            "ready": condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED,
            "condition": condition.message or condition.state.name,
            "revision": running.latest_ready_revision,
            "image": container.image if container else None,
            "max_instances": running.template.scaling.max_instance_count,
            "concurrency": running.template.max_instance_request_concurrency,
        }

    def delete(self, name: str, options: TargetOptions, reporter: Reporter) -> None:
        service = CloudRunService(name=name, options=CloudRunOptions.coerce(options))
        self._ensure_credentials()
        run, secrets = self._clients.run(), self._clients.secrets()

        def delete_service() -> None:
            run.delete_service(name=service.service_name).result(timeout=self._timeout)

        def delete_secret() -> None:
            secrets.delete_secret(name=service.secret_name)

        reporter.step(f"deleting service {service.service_name}")
        if not _delete("run", "DeleteService", delete_service):
            reporter.step("no such service (already deleted)")
        reporter.step(f"deleting secret {service.secret_name}")
        if not _delete("secretmanager", "DeleteSecret", delete_secret):
            reporter.step("no such secret")
        where = f"{service.options.region}-docker.pkg.dev/{service.project}"
        reporter.step(
            f"images stay in {where}/{service.options.repository}/{name}, and the runtime "
            f"service account {service.service_account} stays (a redeploy reuses it); see "
            "docs/deploy.md to delete them"
        )


def _get_service(client: Any, name: str) -> Any:
    """The service, or None when Cloud Run has none of that name."""
    from google.api_core import exceptions

    try:
        with gcp_api("run", "GetService"):
            return client.get_service(name=name)
    except DeployError as error:
        if not isinstance(error.__cause__, exceptions.NotFound):
            raise
        return None


def _delete(service: str, method: str, call: Callable[[], Any]) -> bool:
    """Run a delete call; False when there was nothing to delete."""
    from google.api_core import exceptions

    try:
        with gcp_api(service, method):
            call()
    except DeployError as error:
        if not isinstance(error.__cause__, exceptions.NotFound):
            raise
        return False
    return True


def _urls(service: Any) -> list[str]:
    return list(dict.fromkeys([str(service.uri), *service.urls])) if service.uri else []
