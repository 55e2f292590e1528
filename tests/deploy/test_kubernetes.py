"""``rk build --format kubernetes``: manifests valid for current Kubernetes (kubernetes-validate,
offline, strict), a pod that meets the restricted Pod Security Standard, no secret in any file,
termination matched to the server's shutdown grace, and the code rewards' sandbox stated."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from reward_kit.cli import cli
from reward_kit.deploy import ArtifactKind, Artifacts, BuildOptions, DeploySpec, report_artifacts
from reward_kit.deploy.artifacts import build_kubernetes
from reward_kit.deploy.artifacts._manifests import KubernetesInputs, resources, sandbox_patch
from reward_kit.deploy.artifacts._yaml import to_yaml
from reward_kit.service import ServeSettings, create_app
from reward_kit.service.auth import init_certificates, uvicorn_tls_options

from ..conftest import QUICKSTART, LiveServer, require_integration

AUTH_MODES = ("api-key", "google-iam", "aws-iam", "mtls", "none")
FILES = ("deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "networkpolicy.yaml")
# What a restricted pod may mount (Pod Security Standards, "Volume Types").
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip


def inputs(auth: str = "api-key") -> KubernetesInputs:
    return KubernetesInputs(
        name="math-rewards",
        image="registry.example/math-rewards:1",
        auth=auth,
        shutdown_grace=ServeSettings().shutdown_grace,
    )


def kubernetes_versions() -> list[str]:
    require_integration(modules=("kubernetes_validate",))
    import kubernetes_validate

    # The oldest minor still in upstream support when this was written, and the newest known.
    return ["1.33.0", kubernetes_validate.latest_version()]


def validate(resource: dict[str, Any]) -> None:
    import kubernetes_validate

    for version in kubernetes_versions():
        kubernetes_validate.validate(resource, version, strict=True)


def built(tmp_path: Path, auth: str = "api-key", source: str = QUICKSTART) -> Artifacts:
    spec = DeploySpec(name="math-rewards", sources=(source,), auth=auth)  # type: ignore[arg-type]
    options = BuildOptions(image="registry.example/math-rewards:1")
    return build_kubernetes(spec, tmp_path / "out", options)


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """The Pod Security Standard's restricted checks (baseline's included) on a pod spec."""
    problems = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(flag)
    pod_context = spec.get("securityContext", {})
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {kinds}")
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container.get("securityContext", {})
        where = container["name"]
        if context.get("privileged"):
            problems.append(f"{where}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{where}: capabilities must drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities")
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot")
        if 0 in (context.get("runAsUser"), pod_context.get("runAsUser")):
            problems.append(f"{where}: runs as uid 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get(
            "type"
        )
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile {seccomp}")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{where}: procMount")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            problems.append(f"{where}: hostPort")
    return problems


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_every_resource_is_valid_for_current_kubernetes(auth: str) -> None:
    made = resources(inputs(auth))
    assert sorted(made) == sorted(FILES)
    assert [r["kind"] for r in made.values()] == [
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "NetworkPolicy",
    ]  # fmt: skip
    for resource in made.values():
        validate(resource)
    assert made["hpa.yaml"]["apiVersion"] == "autoscaling/v2"


def test_the_validator_does_catch_mistakes() -> None:
    import kubernetes_validate

    broken = resources(inputs())["deployment.yaml"]
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_the_pod_meets_the_restricted_profile(auth: str) -> None:
    deployment = resources(inputs(auth))["deployment.yaml"]
    spec = pod(deployment)
    assert restricted_violations(spec) == []
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert spec["automountServiceAccountToken"] is False
    assert "replicas" not in deployment["spec"]  # the autoscaler's to set


def test_the_checker_sees_what_the_sandbox_patch_loosens() -> None:
    deployment = resources(inputs())["deployment.yaml"]
    merged = merge(deployment, sandbox_patch())
    validate(merged)  # still a valid Deployment...
    problems = restricted_violations(pod(merged))
    assert "evaluator: seccompProfile Unconfined" in problems  # ...but not a restricted one
    assert "evaluator: procMount" in problems
    assert pod(merged)["hostUsers"] is False


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge of the patch's shapes: mappings merge, containers by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {k: merge(base[k], v) if k in base else v for k, v in patch.items()} | {
            k: v for k, v in base.items() if k not in patch
        }
    if isinstance(base, list) and isinstance(patch, list) and base and "name" in base[0]:
        patched = {item["name"]: item for item in patch}
        return [merge(item, patched[item["name"]]) if item["name"] in patched else item
                for item in base]  # fmt: skip
    return patch


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_the_servers_settings_come_from_the_manifest_and_resolve(auth: str) -> None:
    made = inputs(auth)
    (container,) = pod(resources(made)["deployment.yaml"])["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    # What the image sets (Dockerfile ENV), then the Deployment's env.
    image_env = {"RK_HOST": "0.0.0.0", "PORT": "8080", "RK_TARGETS": "/app/src/rewards.py"}
    image_env |= {"RK_AUTH": auth} if auth != "none" else {"RK_ALLOW_UNAUTHENTICATED": "true"}
    settings = ServeSettings.resolve({}, {**image_env, **env})
    assert settings.workers == made.cpu == int(container["resources"]["limits"]["cpu"])
    assert container["resources"]["requests"] == container["resources"]["limits"]
    # Termination: the pre-stop pause, then the server's grace, then a margin, all in the pod's.
    assert settings.shutdown_grace == ServeSettings().shutdown_grace
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod(resources(made)["deployment.yaml"])["terminationGracePeriodSeconds"]
    assert grace >= pre_stop + math.ceil(settings.shutdown_grace) + 1
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    for path in (settings.api_key_file, settings.ssl_certfile, settings.ssl_keyfile):
        assert path is None or str(Path(path).parent) in mounted


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_probes_are_on_health(auth: str) -> None:
    (container,) = pod(resources(inputs(auth))["deployment.yaml"])["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        action = container[probe]
        if auth == "mtls":  # the kubelet cannot present a client certificate
            assert "https://127.0.0.1:8080/health" in action["exec"]["command"][-1]
        else:
            assert action["httpGet"] == {"path": "/health", "port": "http"}


def test_rk_build_writes_yaml_that_reads_back_as_the_resources(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["build", QUICKSTART, "--format", "kubernetes", "--out", str(out), "--name",
            "math-rewards", "--image", "registry.example/math-rewards:1"]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"kubectl apply -f {out / 'kubernetes'}" in result.output
    assert (out / "context" / "Dockerfile").is_file()
    assert not (out / "kubernetes-sandbox-patch.yaml").exists()
    expected = resources(inputs())
    for file in FILES:
        text = (out / "kubernetes" / file).read_text()
        assert yaml.safe_load(text) == expected[file], file
    header = (out / "kubernetes" / "deployment.yaml").read_text()
    assert "kubectl create secret generic math-rewards-api-keys --from-file=api_keys=" in header
    manifest = Artifacts.read_manifest(out)
    assert manifest.manifests == out / "kubernetes"
    assert manifest.image == "registry.example/math-rewards:1"
    refused = runner.invoke(
        cli, ["build", QUICKSTART, "--out", str(tmp_path / "d"), "--image", "x"]
    )
    assert refused.exit_code != 0
    assert "--image goes with --format kubernetes" in refused.output


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_no_secret_is_written_only_secret_names(
    auth: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets in the building shell must not leak into the manifests either.
    monkeypatch.setenv("RK_API_KEYS", "rk_live_0123456789abcdef")
    monkeypatch.setenv("RK_API_KEY", "rk_client_0123456789abcdef")
    artifacts = built(tmp_path, auth)
    assert artifacts.manifests is not None
    texts = {p.name: p.read_text() for p in artifacts.manifests.iterdir()}
    assert sorted(texts) == sorted(FILES)
    for name, text in texts.items():
        documents = list(yaml.safe_load_all(text))
        assert len(documents) == 1
        assert documents[0]["kind"] not in ("Secret", "ConfigMap"), name
        body = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
        for marker in ("PRIVATE KEY", "CERTIFICATE", "sha256:", "0123456789abcdef", "password"):
            assert marker not in body, (name, marker)
        assert "0123456789abcdef" not in text
    (container,) = pod(yaml.safe_load(texts["deployment.yaml"]))["containers"]
    assert all("valueFrom" not in item for item in container["env"])
    secrets = [v["secret"]["secretName"] for v in pod(yaml.safe_load(texts["deployment.yaml"]))[
        "volumes"] if "secret" in v]  # fmt: skip
    assert secrets == list(inputs(auth).secrets)
    assert bool(secrets) == (auth in ("api-key", "mtls"))


def test_code_rewards_get_the_patch_and_a_warning(tmp_path: Path) -> None:
    artifacts = built(tmp_path, source="reward_kit.rewards:code_execution_reward")
    assert artifacts.sandbox is True
    patch = yaml.safe_load((tmp_path / "out" / "kubernetes-sandbox-patch.yaml").read_text())
    assert patch == sandbox_patch()
    assert artifacts.manifests is not None
    deployment = yaml.safe_load((artifacts.manifests / "deployment.yaml").read_text())
    assert restricted_violations(pod(deployment)) == []  # the manifests stay restricted

    class Steps:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def step(self, message: str) -> None:
            self.lines.append(message)

    steps = Steps()
    report_artifacts(artifacts, ArtifactKind.KUBERNETES, steps)
    (warning,) = [line for line in steps.lines if line.startswith("WARNING")]
    assert "sandbox_unavailable" in warning
    assert "kubernetes-sandbox-patch.yaml" in warning
    assert "privileged" in warning


def test_yaml_writer_quotes_what_yaml_would_misread() -> None:
    tricky = {
        "on": "yes", "version": "1.10", "empty": "", "colon": "a: b", "hash": "# no",
        "multi": "line\none", "nested": [[1, "2"], {"k": None}], "unicode": "é",
        "flags": [True, False], "weird key": {"x": []},
    }  # fmt: skip
    assert yaml.safe_load(to_yaml(tricky)) == tricky


def test_the_mtls_probe_passes_a_real_mtls_server(tmp_path: Path) -> None:
    """The kubelet cannot present a client certificate: the probe the pod runs itself must get
    through a server that requires one (and whose allow-list admits only the trainer)."""
    certs = init_certificates(tmp_path / "pki", clients=["trainer", "probe"], organization="rl")
    secret = tmp_path / "secret"  # laid out as the Secret is mounted
    secret.mkdir()
    for name, source in {
        "tls.crt": certs.server_cert, "tls.key": certs.server_key, "ca.crt": certs.ca_cert,
        "probe.crt": certs.clients["probe"][0], "probe.key": certs.clients["probe"][1],
    }.items():  # fmt: skip
        shutil.copy(source, secret / name)
    settings = ServeSettings(
        targets=(f"{QUICKSTART}:exact_match",),
        workers=0,
        auth=("mtls",),
        ssl_certfile=str(secret / "tls.crt"),
        ssl_keyfile=str(secret / "tls.key"),
        ssl_ca_certs=str(secret / "ca.crt"),
        mtls_allowed_subjects=("CN=trainer,O=rl",),
    )
    (container,) = pod(resources(inputs("mtls"))["deployment.yaml"])["containers"]
    command = container["livenessProbe"]["exec"]["command"]
    with LiveServer(create_app(settings=settings), **uvicorn_tls_options(settings)) as server:
        script = command[-1].replace("/run/secrets/rk-tls", str(secret))
        script = script.replace(":8080/", f":{server.port}/")
        probe = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert probe.returncode == 0, probe.stderr
        # Without its certificate the same check fails the handshake: the probe needs it.
        bare = script.replace("c.load_cert_chain(", "(lambda *a: None)(")
        refused = subprocess.run([sys.executable, "-c", bare], capture_output=True, text=True)
        assert refused.returncode != 0
