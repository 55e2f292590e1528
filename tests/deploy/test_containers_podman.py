"""Real images: build the generated Dockerfile with podman, run it, call it, push it; and the
local target through the docker SDK against ``podman system service``.

No registry is reachable, so the base image is made on the machine (the ``base_image``
fixture, tests/deploy/_podman.py) and passed as BASE_IMAGE. The build is offline: the context
carries a wheelhouse.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reward_kit.deploy import DeploySpec, LocalOptions, LocalTarget
from reward_kit.deploy.artifacts import build_docker_context

from ..conftest import QUICKSTART, free_port, require_integration
from ._podman import BASE_TOOLS, ENV, podman

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOOLS = (*BASE_TOOLS, "docker-registry")
KEY = "rk_container_test_key_0123456789"
ITEM = {
    "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    "ground_truth": "4",
}


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url}/health never answered")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    require_integration(*TOOLS)
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "docker-registry did not start"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=30)


def test_generated_image_builds_runs_authenticates_and_pushes(
    base_image: str, tmp_path: Path, registry: str
) -> None:
    spec = DeploySpec(name="quick", sources=(QUICKSTART,))
    artifacts = build_docker_context(spec, tmp_path / "out", wheelhouse=True, base_image=base_image)
    assert artifacts.docker_context is not None
    tag = "localhost/reward-kit/quick:test"
    started = time.monotonic()
    # --format docker: OCI images drop HEALTHCHECK. --layers=false: no intermediate images are
    # left behind on the machine, run after run.
    built = podman(
        "build", "--format", "docker", "--layers=false", "-t", tag, str(artifacts.docker_context)
    )
    build_seconds = time.monotonic() - started
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    print(f"image build: {build_seconds:.1f}s")
    keys = tmp_path / "keys"
    keys.write_text(f"trainer sha256:{hashlib.sha256(KEY.encode()).hexdigest()}\n")
    keys.chmod(0o644)
    port = free_port()
    name = f"rk-test-{port}"
    run = podman(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "-e", f"PORT={port}", "-e", "RK_HOST=127.0.0.1",
        "-e", "RK_API_KEYS_FILE=/run/secrets/rk_api_keys",
        "-v", f"{keys}:/run/secrets/rk_api_keys:ro", tag,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        scored = httpx.post(
            f"{url}/evaluate/exact_match", json=ITEM, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert scored.status_code == 200, scored.text
        assert scored.json()["score"] == 1.0
        assert httpx.post(f"{url}/evaluate/exact_match", json=ITEM).status_code == 401
        assert podman("healthcheck", "run", name).returncode == 0
        assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
        # The image's config holds no key material.
        inspected = podman("image", "inspect", "--format", "{{json .Config.Env}}", tag).stdout
        assert KEY not in inspected
        assert "sha256:" not in inspected
    finally:
        podman("rm", "-f", name)
    remote = f"{registry}/evals/quick:test"
    try:
        pushed = podman("push", "--tls-verify=false", tag, remote)
        assert pushed.returncode == 0, pushed.stderr
        catalog = httpx.get(f"http://{registry}/v2/evals/quick/tags/list").json()
        assert catalog["tags"] == ["test"]
    finally:
        podman("rmi", "-f", tag)


@pytest.fixture
def podman_socket() -> Iterator[str]:
    require_integration(*TOOLS)
    # A short path: unix socket paths are limited to ~107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="rk-podman-"))
    sock = folder / "podman.sock"
    process = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert process.poll() is None, "podman system service exited"
            assert time.monotonic() < deadline, "podman system service did not listen"
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        process.kill()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


class Steps:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)


def test_local_target_through_the_docker_api(
    base_image: str, podman_socket: str, tmp_path: Path
) -> None:
    port = free_port()
    options = LocalOptions(
        docker_host=podman_socket, port=port, network="host", base_image=base_image,
        state_dir=str(tmp_path / "state"), health_timeout=120,
    )  # fmt: skip
    spec = DeploySpec(name="quick-local", sources=(QUICKSTART,), options=options)
    artifacts = build_docker_context(spec, tmp_path / "out", wheelhouse=True, base_image=base_image)
    target = LocalTarget()
    steps = Steps()
    try:
        first = target.deploy(spec, artifacts, steps)
        assert first.url == f"http://127.0.0.1:{port}"
        key = first.details["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        scored = httpx.post(f"{first.url}/evaluate/exact_match", json=ITEM, headers=headers)
        assert scored.status_code == 200, scored.text
        # Only the hash is on disk, and the key is never written into the compose file.
        key_file = tmp_path / "state" / "quick-local" / "secrets" / "rk_api_keys"
        assert key not in key_file.read_text()
        assert key not in (tmp_path / "out" / "docker-compose.yml").read_text()
        status = target.status("quick-local", options)
        assert status["exists"] is True
        assert status["status"] == "running"
        # Re-running replaces the container in place; the existing key keeps working.
        second = target.deploy(spec, artifacts, steps)
        assert "api_key" not in second.details
        assert any("replacing the running rk-quick-local" in line for line in steps.lines)
        again = httpx.post(f"{second.url}/evaluate/exact_match", json=ITEM, headers=headers)
        assert again.status_code == 200
    finally:
        target.delete("quick-local", options, steps)
    assert target.status("quick-local", options) == {"name": "quick-local", "exists": False}


# What docs/deploy.md says a Podman container needs for bubblewrap: an unmasked /proc (for its
# fresh proc mount) and no seccomp filter (Podman's default one refuses sethostname in the
# sandbox's UTS namespace).
SANDBOX_OPTIONS = [
    "--security-opt",
    "systempaths=unconfined",
    "--security-opt",
    "seccomp=unconfined",
]


def test_code_rewards_run_in_the_image_with_an_unmasked_proc(
    base_image: str, tmp_path: Path
) -> None:
    """The image of a code reward carries bubblewrap, and the sandbox starts inside the
    container with the settings docs/deploy.md names for Podman; without them, the call is an
    error naming bubblewrap's refusal, never a score."""
    target = "reward_kit.rewards:code_execution_reward"
    spec = DeploySpec(name="code", sources=(target,), auth="none")
    artifacts = build_docker_context(spec, tmp_path / "out", wheelhouse=True, base_image=base_image)
    assert artifacts.sandbox is True
    assert artifacts.docker_context is not None
    tag = "localhost/reward-kit/code:test"
    built = podman(
        "build", "--format", "docker", "--layers=false", "-t", tag, str(artifacts.docker_context)
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    item = {
        "messages": [{"role": "assistant", "content": "def add(a, b):\n    return a + b\n"}],
        "ground_truth": {"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]},
    }
    try:
        for unmasked in (True, False):
            port = free_port()
            name = f"rk-test-code-{port}"
            options = SANDBOX_OPTIONS if unmasked else []
            run = podman(
                "run", "-d", "--name", name, "--network", "host", "--read-only",
                "--tmpfs", "/tmp", *options, "-e", f"PORT={port}", "-e", "RK_HOST=127.0.0.1",
                tag,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr
            try:
                url = f"http://127.0.0.1:{port}"
                wait_healthy(url)
                answer = httpx.post(f"{url}/evaluate/code_execution_reward", json=item, timeout=60)
                if unmasked:
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["score"] == 1.0, answer.text
                    assert "(bubblewrap)" in answer.json()["reason"], answer.text
                else:
                    assert answer.status_code != 200, answer.text
                    assert "SandboxUnavailable" in answer.text or (
                        answer.json()["error"]["code"] == "sandbox_unavailable"
                    ), answer.text
                    assert "bwrap" in answer.json()["error"]["message"], answer.text
            finally:
                podman("rm", "-f", name)
    finally:
        podman("rmi", "-f", tag)


def test_local_target_runs_code_rewards_on_podman(
    base_image: str, podman_socket: str, tmp_path: Path
) -> None:
    port = free_port()
    options = LocalOptions(
        docker_host=podman_socket, port=port, network="host", base_image=base_image,
        state_dir=str(tmp_path / "state"), health_timeout=120,
    )  # fmt: skip
    target_name = "reward_kit.rewards:code_execution_reward"
    spec = DeploySpec(name="code-local", sources=(target_name,), auth="none", options=options)
    artifacts = build_docker_context(spec, tmp_path / "out", wheelhouse=True, base_image=base_image)
    target = LocalTarget()
    steps = Steps()
    item = {
        "messages": [{"role": "assistant", "content": "def add(a, b):\n    return a + b\n"}],
        "ground_truth": {"tests": ["assert add(1, 2) == 3"]},
    }
    try:
        deployed = target.deploy(spec, artifacts, steps)
        assert any("systempaths=unconfined" in line for line in steps.lines)
        answer = httpx.post(f"{deployed.url}/evaluate/code_execution_reward", json=item, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["score"] == 1.0, answer.text
    finally:
        target.delete("code-local", options, steps)
