"""The ``local`` target: build and run the evaluator image on this machine's container engine.

It speaks the Docker Engine API through the docker SDK, so it works against Docker or against
Podman's compatible socket (``DOCKER_HOST=unix:///run/podman/podman.sock``). Re-running a
deploy rebuilds the image and replaces the container; the API key file (hashes only) is kept
in the state folder so existing clients keep working.

Its options are :class:`LocalOptions`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx

from ...._errors import ConfigurationError
from ..._api_key import new_api_key
from ..._errors import DeployError
from ..._guards import check_auth_options
from ..._names import ArtifactKind
from ..._options import TargetOptions
from ..._sdk_snippet import sdk_snippet
from ..._spec import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter
from ...artifacts import API_KEYS_SECRET, auth_environment, image_tag
from ._engine import connect, docker_module, sandbox_security_options
from ._options import LocalOptions

__all__ = ["LocalTarget"]

_LABEL = "dev.reward-kit.deploy"


def _state_dir(name: str, options: LocalOptions) -> Path:
    if options.state_dir:
        return Path(options.state_dir) / name
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reward-kit" / "local" / name


def _container_name(name: str) -> str:
    return f"rk-{name}"


class LocalTarget:
    """Runs evaluators as local containers.

    >>> spec = DeploySpec(name="demo", sources=("r.py",))
    >>> LocalTarget().plan(spec, Artifacts(out_dir=Path(".")))[0].method
    'images.build'
    """

    name: ClassVar[str] = "local"
    public: ClassVar[bool] = False
    options_model: ClassVar[type[LocalOptions]] = LocalOptions
    artifact: ClassVar[ArtifactKind] = ArtifactKind.DOCKER

    def __init__(self, *, client: Any = None) -> None:
        # A client may be given (tests); otherwise one is made per call from the options.
        self._client = client

    @contextlib.contextmanager
    def _engine(self, options: LocalOptions) -> Iterator[Any]:
        """A connected Docker API client, closed afterwards (unless one was given)."""
        if self._client is not None:
            yield self._client
            return
        with connect(options.docker_host) as client:
            yield client

    def _checked(self, spec: DeploySpec) -> LocalOptions:
        options = LocalOptions.coerce(spec.options)
        check_auth_options(spec, self)
        return options

    def check(self, spec: DeploySpec, *, dry_run: bool = False) -> None:
        options = self._checked(spec)
        if not dry_run:  # a plan needs no engine
            with self._engine(options):
                pass

    def plan(self, spec: DeploySpec, artifacts: Artifacts) -> Sequence[PlannedCall]:
        options = self._checked(spec)
        image, container = image_tag(spec.name), _container_name(spec.name)
        return [
            PlannedCall(
                service="docker",
                method="images.build",
                summary=f"build {image} from {artifacts.docker_context}",
                request={"tag": image, "buildargs": _buildargs(options)},
            ),
            PlannedCall(
                service="docker",
                method="containers.remove",
                summary=f"remove the old {container} container, if any",
            ),
            PlannedCall(
                service="docker",
                method="containers.run",
                summary=f"run {image} on 127.0.0.1:{options.port}, read-only root, keys as a "
                "secret file",
                request={"name": container, "image": image, "port": options.port},
            ),
        ]

    def deploy(self, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter) -> Deployment:
        options = self._checked(spec)
        if artifacts.docker_context is None:
            raise ConfigurationError("the local target needs a Docker build context")
        with self._engine(options) as client:
            image = self._build(client, spec, options, artifacts.docker_context, reporter)
            return self._run(client, spec, options, image, artifacts, reporter)

    @staticmethod
    def _build(
        client: Any, spec: DeploySpec, options: LocalOptions, context: Path, reporter: Reporter
    ) -> str:
        image = image_tag(spec.name)
        reporter.step(f"building {image} (this can take a minute)")
        try:
            client.images.build(
                path=str(context),
                tag=image,
                rm=True,
                buildargs=_buildargs(options),
                labels={_LABEL: spec.name},
            )
        except Exception as error:
            raise DeployError(f"the image build failed: {error}") from None
        return image

    def _run(
        self, client: Any, spec: DeploySpec, options: LocalOptions, image: str,
        artifacts: Artifacts, reporter: Reporter,
    ) -> Deployment:  # fmt: skip
        environment = {"RK_LOG_LEVEL": "info", **auth_environment(spec.auth)}
        mounts, api_key = _secrets(spec, options, environment)
        self._remove(client, spec.name, reporter)
        reporter.step(f"starting {_container_name(spec.name)}")
        run = _network(options, environment)
        if artifacts.sandbox:
            run["security_opt"] = sandbox_security_options(client, reporter)
        container = client.containers.run(
            image,
            name=_container_name(spec.name),
            detach=True,
            environment=environment,
            mounts=mounts,
            read_only=True,
            tmpfs={"/tmp": "rw,size=64m"},
            labels={_LABEL: spec.name},
            restart_policy={"Name": "unless-stopped"},
            **run,
        )
        url = f"http://127.0.0.1:{options.port}"
        reporter.step(f"waiting for {url}/health")
        _wait_healthy(container, url, options.health_timeout)
        details: dict[str, Any] = {"container": container.name, "image": image}
        if artifacts.compose_file is not None:
            details["compose_file"] = str(artifacts.compose_file)
        if api_key is not None:
            details["api_key"] = api_key  # shown once by the CLI; only its hash is stored
        return Deployment(url=url, auth=spec.auth, sdk_snippet=sdk_snippet(url, spec.auth),
                          details=details)  # fmt: skip

    @staticmethod
    def _remove(client: Any, name: str, reporter: Reporter) -> bool:
        try:
            old = client.containers.get(_container_name(name))
        except docker_module().errors.NotFound:
            return False
        reporter.step(f"replacing the running {old.name}")
        old.remove(force=True)
        return True

    def status(self, name: str, options: TargetOptions) -> Mapping[str, Any]:
        with self._engine(LocalOptions.coerce(options)) as client:
            try:
                container = client.containers.get(_container_name(name))
            except docker_module().errors.NotFound:
                return {"name": name, "exists": False}
        state = container.attrs.get("State", {})
        return {
            "name": name,
            "exists": True,
            "container": container.name,
            "status": container.status,
            "health": (state.get("Health") or {}).get("Status"),
            "image": image_tag(name),
        }

    def delete(self, name: str, options: TargetOptions, reporter: Reporter) -> None:
        with self._engine(LocalOptions.coerce(options)) as client:
            if not self._remove(client, name, reporter):
                reporter.step(f"no container {_container_name(name)}")
            try:
                client.images.remove(image_tag(name))
                reporter.step(f"removed image {image_tag(name)}")
            except docker_module().errors.ImageNotFound:
                pass


def _buildargs(options: LocalOptions) -> dict[str, str]:
    return {"BASE_IMAGE": options.base_image} if options.base_image else {}


def _network(options: LocalOptions, environment: dict[str, str]) -> dict[str, Any]:
    """The container's network: bridge publishes on 127.0.0.1; host binds 127.0.0.1 itself."""
    if options.network == "host":
        environment |= {"RK_HOST": "127.0.0.1", "PORT": str(options.port)}
        return {"network_mode": "host"}
    return {"ports": {"8080/tcp": ("127.0.0.1", options.port)}}


def _secrets(
    spec: DeploySpec, options: LocalOptions, environment: dict[str, str]
) -> tuple[list[Any], str | None]:
    """Mount the API key file; create it (and a first key) on the first deploy."""
    if spec.auth != "api-key":
        return [], None
    key_file = _state_dir(spec.name, options) / "secrets" / "rk_api_keys"
    api_key = None
    if not key_file.is_file():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        api_key, line = new_api_key()
        key_file.write_text(line + "\n")
        # Hashes only; readable by the container's non-root user through the bind mount.
        key_file.chmod(0o644)
    environment["RK_API_KEYS_FILE"] = API_KEYS_SECRET
    mount = docker_module().types.Mount(
        target=API_KEYS_SECRET, source=str(key_file), type="bind", read_only=True
    )
    return [mount], api_key


def _wait_healthy(container: Any, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            logs = container.logs(tail=20).decode(errors="replace")
            raise DeployError(f"the container stopped while starting; its last lines:\n{logs}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    logs = container.logs(tail=20).decode(errors="replace")
    raise DeployError(f"{url}/health did not answer within {timeout:g}s; last lines:\n{logs}")
