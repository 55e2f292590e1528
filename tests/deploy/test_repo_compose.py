"""``docker compose up`` on the repository's own Dockerfile and docker-compose.yml, through
podman-compose: the image builds from source, and the container scores examples/quickstart with
the key made as the compose file's header says.

There is no Docker engine here, so podman-compose runs the files. The build context is a copy
of what the Dockerfile copies (as a fresh clone has it). An override file, written here, only
points BASE_IMAGE at a local base image, tags the image for the test, and uses the host network
with a free port: the podman bridge network (10.88.0.0/16) is not usable on this VM.

The Dockerfile installs reward-kit from source with pip, from an index. Like the other image
builds in these tests, the build needs no internet: the build backend and dependencies are
downloaded on this machine and served on 127.0.0.1 (chroot builds share the host's network),
and the base image given to the build is the local one with pip pointed at them. (Fetching
from PyPI inside the build fails on this VM anyway: its egress proxy's CA is not in the base
image's trust store.)
"""

from __future__ import annotations

import functools
import http.server
import json
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from reward_kit.deploy.artifacts import pip_platform

from ..conftest import ROOT, free_port, require_integration
from ._podman import ENV, podman

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomli comes with the dev extra on Python 3.10
    import tomli as tomllib

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# BUILDAH_FORMAT=docker keeps the image's HEALTHCHECK (OCI images drop it), as docker builds
# do; BUILDAH_LAYERS=false leaves no intermediate images behind.
COMPOSE_ENV = {**ENV, "BUILDAH_FORMAT": "docker", "BUILDAH_LAYERS": "false"}
# The base image is Debian bookworm's python3.
BASE_PYTHON = "3.11"
RIGHT = {
    "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    "ground_truth": "4",
}
WRONG = {**RIGHT, "ground_truth": "5"}


@pytest.fixture
def podman_compose() -> list[str]:
    """podman-compose from the dev extra, run by this interpreter (no PATH lookup)."""
    require_integration(modules=("podman_compose",), reason="needs podman-compose (the dev extra)")
    return [sys.executable, "-m", "podman_compose"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wheel_index(tmp_path: Path) -> Iterator[str]:
    """A find-links page on 127.0.0.1 with what building the repository needs: the build
    backend and the dependencies of reward-kit[server] (wheels for the base image's Python)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["server"],
    ]
    wheels = tmp_path / "wheels"
    downloaded = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "--platform", pip_platform(platform.machine()),
         "--implementation", "cp", "--python-version", BASE_PYTHON,
         "--dest", str(wheels), *requirements],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert downloaded.returncode == 0, downloaded.stderr[-3000:]
    handler = functools.partial(_QuietHandler, directory=str(wheels))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join(timeout=30)


@pytest.fixture
def offline_base(base_image: str, wheel_index: str, tmp_path: Path) -> Iterator[str]:
    """The local base image with pip installing from ``wheel_index`` only."""
    folder = tmp_path / "offline-base"
    folder.mkdir()
    (folder / "Dockerfile").write_text(
        f"FROM {base_image}\nENV PIP_NO_INDEX=1 PIP_FIND_LINKS={wheel_index}\n"
    )
    tag = f"localhost/reward-kit-test-base-offline:{free_port()}"
    built = podman("build", "--format", "docker", "-t", tag, str(folder))
    assert built.returncode == 0, built.stderr
    try:
        yield tag
    finally:
        podman("rmi", "-f", tag)


def clone_build_files(dest: Path) -> None:
    """The repository's Dockerfile, compose file, .dockerignore, and what the Dockerfile COPYs."""
    dest.mkdir()
    for name in ("Dockerfile", "docker-compose.yml", ".dockerignore"):
        shutil.copy2(ROOT / name, dest / name)
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    sources: list[str] = []
    for instruction in parser.structure:
        if instruction["instruction"] != "COPY":
            continue
        words = instruction["value"].split()
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words[:-1] if not word.startswith("--")]
    assert "reward_kit/" in sources, sources
    for source in sources:
        path = ROOT / source
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(path, dest / source, ignore=ignore)
        else:
            (dest / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / source)


def make_api_key(context: Path, compose: dict[str, Any]) -> str:
    """What the compose file's header says: ``mkdir -p .rk-secrets``, ``rk keys generate --id
    me``, its ``me sha256:...`` line into ``.rk-secrets/api_keys``; returns the key."""
    header = (context / "docker-compose.yml").read_text().splitlines()[1]
    assert "rk keys generate --id me" in header, header
    assert ".rk-secrets/api_keys" in header, header
    assert compose["secrets"]["rk_api_keys"]["file"] == "./.rk-secrets/api_keys"
    (context / ".rk-secrets").mkdir()
    rk = Path(sys.executable).parent / "rk"
    generated = subprocess.run(
        [str(rk), "keys", "generate", "--id", "me"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = [line for line in generated.stdout.splitlines() if not line.startswith("#")]
    (key,) = [line for line in lines if line.startswith("rk_")]
    (hash_line,) = [line for line in lines if line.startswith("me sha256:")]
    keys_file = context / ".rk-secrets" / "api_keys"
    keys_file.write_text(hash_line + "\n")
    # As `echo ... > file` leaves it under the usual umask 022: the container's user (uid
    # 10001) reads it through the secret's bind mount.
    keys_file.chmod(0o644)
    return key


def write_override(path: Path, *, base: str, image: str, port: int) -> None:
    """BASE_IMAGE, and the host network on a free loopback port instead of the bridge."""
    path.write_text(
        "services:\n"
        "  evaluator:\n"
        "    build:\n"
        "      args:\n"
        f"        BASE_IMAGE: {base}\n"
        # A test tag, so a developer's reward-kit/quickstart:latest is left alone.
        f"    image: {image}\n"
        "    network_mode: host\n"
        "    ports: !reset []\n"
        "    environment:\n"
        f'      PORT: "{port}"\n'
        '      RK_HOST: "127.0.0.1"\n'
    )


def wait_for_container_health(url: str, container: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        if state != "running" or time.monotonic() > deadline:
            logs = podman("logs", container)
            raise AssertionError(
                f"{url}/health never answered (container {state!r}):\n"
                + (logs.stdout + logs.stderr)[-3000:]
            )
        time.sleep(0.3)


@pytest.mark.timeout(900)  # the first run on a machine also debootstraps the base image
def test_repository_compose_file_serves_the_quickstart(
    podman_compose: list[str], offline_base: str, tmp_path: Path
) -> None:
    context = tmp_path / "reward-kit"
    clone_build_files(context)
    compose = yaml.safe_load((context / "docker-compose.yml").read_text())
    key = make_api_key(context, compose)
    port = free_port()
    project = f"rk-compose-test-{port}"
    image = f"localhost/reward-kit-compose-test:{port}"
    override = tmp_path / "override.yml"
    write_override(override, base=offline_base, image=image, port=port)
    files = ["-p", project, "-f", str(context / "docker-compose.yml"), "-f", str(override)]

    def compose_run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*podman_compose, *files, *args], cwd=context, env=COMPOSE_ENV,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    started = time.monotonic()
    try:
        up = compose_run("up", "-d", "--build")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        print(f"podman-compose up --build: {time.monotonic() - started:.1f}s")
        listed = podman(
            "ps", "-a", "--filter", f"label=io.podman.compose.project={project}",
            "--format", "{{.Names}}",
        )  # fmt: skip
        (container,) = listed.stdout.split()
        url = f"http://127.0.0.1:{port}"
        wait_for_container_health(url, container)
        health = httpx.get(f"{url}/health").json()
        assert "exact_match" in health["functions"]
        print(f"healthy after {time.monotonic() - started:.1f}s")

        auth = {"Authorization": f"Bearer {key}"}
        right = httpx.post(f"{url}/evaluate/exact_match", json=RIGHT, headers=auth)
        assert right.status_code == 200, right.text
        assert right.json()["score"] == 1.0
        assert right.json()["is_score_valid"] is True
        wrong = httpx.post(f"{url}/evaluate/exact_match", json=WRONG, headers=auth)
        assert wrong.status_code == 200, wrong.text
        assert wrong.json()["score"] == 0.0
        # No key: 401; a key the server does not know: 403 (docs/http-api.md).
        assert httpx.post(f"{url}/evaluate/exact_match", json=RIGHT).status_code == 401
        other = {"Authorization": "Bearer rk_not_the_key"}
        assert (
            httpx.post(f"{url}/evaluate/exact_match", json=RIGHT, headers=other).status_code == 403
        )

        # The compose healthcheck (which follows $PORT) passes.
        checked = podman("healthcheck", "run", container)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # The compose file's hardening holds: non-root, read-only root, key as a secret file.
        inspected = json.loads(podman("inspect", container).stdout)[0]
        assert inspected["Config"]["User"] == "10001:10001"
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True
        mounts = {mount["Destination"]: mount for mount in inspected["Mounts"]}
        assert mounts["/run/secrets/rk_api_keys"]["RW"] is False
        assert key not in json.dumps(inspected)
    finally:
        down = compose_run("down", "-t", "5", timeout=300)
        podman("rmi", "-f", image)
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    leftover = podman("ps", "-a", "--filter", f"label=io.podman.compose.project={project}", "-q")
    assert leftover.stdout.strip() == ""
