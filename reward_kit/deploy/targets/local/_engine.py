"""The container engine the local target talks to: Docker, or Podman's compatible socket."""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
from collections.abc import Iterator
from typing import Any

from ...._errors import ConfigurationError
from ...._extras import require
from ..._spec import Reporter

__all__ = ["DEFAULT_SOCKET", "connect", "docker_module", "sandbox_security_options"]

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def docker_module() -> Any:
    # Imported on use (the docker extra is optional); typed Any because docker has no stubs.
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


@contextlib.contextmanager
def connect(host: str | None) -> Iterator[Any]:
    """A connected Docker API client for ``host`` (None: Docker's default socket), closed after."""
    docker = docker_module()
    # from_env also reads DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for a tcp:// host.
    environment = {**os.environ, "DOCKER_HOST": host} if host else None
    client = None
    try:
        _probe_socket(host or DEFAULT_SOCKET)
        client = docker.from_env(environment=environment)
        client.ping()
    except Exception as error:
        if client is not None:
            client.close()
        where = host or f"the default socket ({DEFAULT_SOCKET})"
        raise ConfigurationError(
            f"no container engine is reachable at {where} "
            f"({type(error).__name__}): start Docker, or run `podman system service --time=0 "
            "unix:///tmp/podman.sock` and set DOCKER_HOST=unix:///tmp/podman.sock"
        ) from None
    try:
        yield client
    finally:
        client.close()


def sandbox_security_options(client: Any, reporter: Reporter) -> list[str]:
    """Container settings bubblewrap needs to build the code rewards' sandbox inside it.

    It mounts a fresh /proc in its own user and PID namespaces, which the kernel refuses while
    the engine masks paths of the container's /proc, and it sets the sandbox's hostname, which
    Podman's default seccomp profile refuses. Podman takes both settings through its API
    (verified, tests/deploy/test_containers_podman.py). Docker's daemon takes the unmasking
    only as ``MaskedPaths``, which the docker SDK cannot send: there the code rewards answer
    ``sandbox_unavailable`` until the container runs as docs/deploy.md shows.
    """
    engine = " ".join(str(c.get("Name", "")) for c in client.version().get("Components") or ())
    if "podman" in engine.lower():
        reporter.step(
            "the code rewards' sandbox needs user namespaces and its own /proc in the "
            "container: running with --security-opt systempaths=unconfined and "
            "seccomp=unconfined (the evaluator still runs as uid 10001, without capabilities)"
        )
        return ["systempaths=unconfined", "seccomp=unconfined"]
    reporter.step(
        "WARNING: the code rewards' sandbox cannot start in a container made through Docker's "
        "API (it needs an unmasked /proc); they will answer sandbox_unavailable. Run the image "
        "with docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined "
        "--security-opt systempaths=unconfined (docs/deploy.md), or use Podman"
    )
    return []  # loosening seccomp alone would weaken the container for nothing
