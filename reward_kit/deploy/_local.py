"""The ``local`` target: build and run the evaluator image on this machine's container engine.

It speaks the Docker Engine API through the docker SDK, so it works against Docker or against
Podman's compatible socket (``DOCKER_HOST=unix:///run/podman/podman.sock``). Re-running a
deploy rebuilds the image and replaces the container; the API key file (hashes only) is kept
in the state folder so existing clients keep working.

Options (``spec.options`` / the ``options`` mapping): ``port`` (host port, default 8080),
``docker_host``, ``base_image`` (build argument), ``network`` (``bridge``: publish on
127.0.0.1; ``host``: share the host network and bind 127.0.0.1), ``state_dir``,
``health_timeout`` (seconds, default 90).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx

from .._errors import ConfigurationError
from .._extras import require
from ._common import DeployError, new_api_key, sdk_snippet
from ._context import image_tag
from ._dockerfile import API_KEYS_SECRET, auth_environment
from ._target import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter

__all__ = ["LocalTarget"]

_LABEL = "dev.reward-kit.deploy"


def _state_dir(name: str, options: Mapping[str, Any]) -> Path:
    given = options.get("state_dir")
    if given:
        return Path(given) / name
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reward-kit" / "local" / name


def _docker() -> Any:
    # Imported on use (the docker extra is optional); typed Any because docker has no stubs.
    import importlib

    require("docker", extra="docker", feature="the local deploy target")
    for module in ("docker.types", "docker.errors"):
        importlib.import_module(module)
    return importlib.import_module("docker")


def _probe_socket(host: str) -> None:
    """Connect to a unix socket first: docker's client leaks its socket when construction fails."""
    if not host.startswith("unix://"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        probe.connect(host.removeprefix("unix://"))


def _container_name(name: str) -> str:
    return f"rk-{name}"


class LocalTarget:
    """Runs evaluators as local containers.

    >>> spec = DeploySpec(name="demo", sources=("r.py",))
    >>> LocalTarget().plan(spec, Artifacts(out_dir=Path(".")))[0].method
    'images.build'
    """

    name: ClassVar[str] = "local"

    def __init__(self, *, client: Any = None) -> None:
        # A client may be given (tests); otherwise one is made per call from the options.
        self._client = client

    @contextlib.contextmanager
    def _engine(self, options: Mapping[str, Any]) -> Iterator[Any]:
        """A connected Docker API client, closed afterwards (unless one was given)."""
        if self._client is not None:
            yield self._client
            return
        docker = _docker()
        host = options.get("docker_host") or os.environ.get("DOCKER_HOST")
        where = host or "the default socket (unix:///var/run/docker.sock)"
        client = None
        try:
            _probe_socket(host or "unix:///var/run/docker.sock")
            client = docker.DockerClient(base_url=host) if host else docker.from_env()
            client.ping()
        except Exception as error:
            if client is not None:
                client.close()
            raise ConfigurationError(
                f"no container engine is reachable at {where} ({type(error).__name__}): start "
                "Docker, or run `podman system service --time=0 unix:///tmp/podman.sock` and "
                "set DOCKER_HOST=unix:///tmp/podman.sock"
            ) from None
        try:
            yield client
        finally:
            client.close()

    def check(self, spec: DeploySpec) -> None:
        with self._engine(spec.options):
            pass

    def plan(self, spec: DeploySpec, artifacts: Artifacts) -> Sequence[PlannedCall]:
        image = image_tag(spec.name)
        port = int(spec.options.get("port", 8080))
        return [
            PlannedCall(
                service="docker",
                method="images.build",
                summary=f"build {image} from {artifacts.docker_context}",
                request={"tag": image, "buildargs": self._buildargs(spec.options)},
            ),
            PlannedCall(
                service="docker",
                method="containers.remove",
                summary=f"remove the old {_container_name(spec.name)} container, if any",
            ),
            PlannedCall(
                service="docker",
                method="containers.run",
                summary=f"run {image} on 127.0.0.1:{port}, read-only root, keys as a secret file",
                request={"name": _container_name(spec.name), "image": image, "port": port},
            ),
        ]

    @staticmethod
    def _buildargs(options: Mapping[str, Any]) -> dict[str, str]:
        base = options.get("base_image")
        return {"BASE_IMAGE": str(base)} if base else {}

    def deploy(self, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter) -> Deployment:
        if artifacts.docker_context is None:
            raise ConfigurationError("the local target needs a Docker build context")
        with self._engine(spec.options) as client:
            return self._deploy(client, spec, artifacts, reporter)

    def _deploy(
        self, client: Any, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter
    ) -> Deployment:
        assert artifacts.docker_context is not None
        image = image_tag(spec.name)
        reporter.step(f"building {image} (this can take a minute)")
        try:
            client.images.build(
                path=str(artifacts.docker_context),
                tag=image,
                rm=True,
                buildargs=self._buildargs(spec.options),
                labels={_LABEL: spec.name},
            )
        except Exception as error:
            raise DeployError(f"the image build failed: {error}") from None
        port = int(spec.options.get("port", 8080))
        environment = {"RK_LOG_LEVEL": "info", **auth_environment(spec.auth)}
        mounts, api_key = self._secrets(spec, environment)
        self._remove(client, spec.name, reporter)
        reporter.step(f"starting {_container_name(spec.name)}")
        network = spec.options.get("network", "bridge")
        run: dict[str, Any] = {}
        if network == "host":
            # Sharing the host network: bind loopback only, on the requested port.
            environment |= {"RK_HOST": "127.0.0.1", "PORT": str(port)}
            run["network_mode"] = "host"
        else:
            run["ports"] = {"8080/tcp": ("127.0.0.1", port)}
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
        url = f"http://127.0.0.1:{port}"
        reporter.step(f"waiting for {url}/health")
        self._wait_healthy(container, url, float(spec.options.get("health_timeout", 90)))
        details: dict[str, Any] = {"container": container.name, "image": image}
        if artifacts.extra.get("compose_file"):
            details["compose_file"] = str(artifacts.extra["compose_file"])
        if api_key is not None:
            details["api_key"] = api_key  # shown once by the CLI; only its hash is stored
        return Deployment(url=url, auth=spec.auth, sdk_snippet=sdk_snippet(url, spec.auth),
                          details=details)  # fmt: skip

    def _secrets(
        self, spec: DeploySpec, environment: dict[str, str]
    ) -> tuple[list[Any], str | None]:
        """Mount the API key file; create it (and a first key) on the first deploy."""
        if spec.auth != "api-key":
            return [], None
        key_file = _state_dir(spec.name, spec.options) / "secrets" / "rk_api_keys"
        api_key = None
        if not key_file.is_file():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            api_key, line = new_api_key()
            key_file.write_text(line + "\n")
            # Hashes only; readable by the container's non-root user through the bind mount.
            key_file.chmod(0o644)
        environment["RK_API_KEYS_FILE"] = API_KEYS_SECRET
        mount = _docker().types.Mount(
            target=API_KEYS_SECRET, source=str(key_file), type="bind", read_only=True
        )
        return [mount], api_key

    @staticmethod
    def _remove(client: Any, name: str, reporter: Reporter) -> bool:
        try:
            old = client.containers.get(_container_name(name))
        except _docker().errors.NotFound:
            return False
        reporter.step(f"replacing the running {old.name}")
        old.remove(force=True)
        return True

    @staticmethod
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

    def status(self, name: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
        with self._engine(options) as client:
            try:
                container = client.containers.get(_container_name(name))
            except _docker().errors.NotFound:
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

    def delete(self, name: str, options: Mapping[str, Any], reporter: Reporter) -> None:
        with self._engine(options) as client:
            if not self._remove(client, name, reporter):
                reporter.step(f"no container {_container_name(name)}")
            try:
                client.images.remove(image_tag(name))
                reporter.step(f"removed image {image_tag(name)}")
            except _docker().errors.ImageNotFound:
                pass
