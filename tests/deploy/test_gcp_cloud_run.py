"""gcp-cloud-run against the local Google REST fake, through the real client libraries."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward_kit._errors import ConfigurationError
from reward_kit.deploy import (
    Artifacts,
    CloudRunOptions,
    CloudRunTarget,
    DeployError,
    DeploySpec,
    write_plan,
)

from ._gcp_fake import BUILD_FAILURE, GoogleFake, serve_google_fake


@pytest.fixture
def google_fake() -> Iterator[GoogleFake]:
    yield from serve_google_fake()


pytest.importorskip("google.cloud.run_v2")

SA = "evaluator@my-proj-1.iam.gserviceaccount.com"
TRAINER = "serviceAccount:trainer@my-proj-1.iam.gserviceaccount.com"
SERVICE = "projects/my-proj-1/locations/europe-west1/services/math-rewards"


class Steps:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    context = tmp_path / "out" / "docker"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY app.py /app/\n")
    (context / "app.py").write_text("print('hi')\n")
    return Artifacts(out_dir=tmp_path / "out", docker_context=context)


def target(fake: GoogleFake) -> CloudRunTarget:
    from google.auth.credentials import AnonymousCredentials

    return CloudRunTarget(credentials=AnonymousCredentials(), endpoint=fake.endpoint)


def spec(auth: str = "api-key", **options: Any) -> DeploySpec:
    base: dict[str, Any] = {
        "project": "my-proj-1",
        "region": "europe-west1",
        "service_account": SA,
        "max_instances": 3,
        "concurrency": 4,
        "memory": "2Gi",
    }
    given = {key: value for key, value in {**base, **options}.items() if value is not None}
    return DeploySpec(
        name="math-rewards", sources=("rewards.py",), auth=auth,  # type: ignore[arg-type]
        options=CloudRunOptions(**given),
    )  # fmt: skip


def env_of(service: dict[str, Any]) -> dict[str, Any]:
    container = service["template"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueSource")) for e in container["env"]}


def test_first_api_key_deploy_builds_stores_hash_and_creates_service(
    google_fake: GoogleFake, artifacts: Artifacts
) -> None:
    steps = Steps()
    result = target(google_fake).deploy(spec(), artifacts, steps)

    # The image: repository created, context uploaded byte-for-byte, Cloud Build asked to push.
    assert google_fake.requests("POST", r"/repositories$")[0].query["repositoryId"] == [
        "reward-kit"
    ]
    repo_body = google_fake.requests("POST", r"/repositories$")[0].body
    assert repo_body["format"] == 1  # Repository.Format.DOCKER, as an integer on the wire
    [(object_name, tarball)] = google_fake.objects.items()
    assert object_name.startswith("my-proj-1_cloudbuild/source/reward-kit-math-rewards-")
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "app.py"]
    [build] = google_fake.builds
    image = build["images"][0]
    assert image.startswith("europe-west1-docker.pkg.dev/my-proj-1/reward-kit/math-rewards:")
    assert build["steps"][0]["args"] == ["build", "-t", image, "."]
    assert build["source"]["storageSource"]["object"] == object_name.split("/", 1)[1]

    # The key: only its hash went to Secret Manager; the runtime SA alone may read it.
    key = result.details["api_key"]
    secret = "projects/my-proj-1/secrets/rk-math-rewards-api-key"
    assert google_fake.versions[secret] == [
        f"deploy sha256:{hashlib.sha256(key.encode()).hexdigest()}".encode()
    ]
    assert google_fake.policies[secret]["bindings"] == [
        {"role": "roles/secretmanager.secretAccessor", "members": [f"serviceAccount:{SA}"]}
    ]

    # The service: pinned secret reference, scaling, image by digest, ints for enums.
    [create] = google_fake.requests("POST", r"/services$")
    assert create.query["serviceId"] == ["math-rewards"]
    body = create.body
    assert key not in json.dumps(body)
    assert env_of(body) == {
        "RK_AUTH": "api-key",
        "RK_API_KEYS": {"secretKeyRef": {"secret": "rk-math-rewards-api-key", "version": "1"}},
    }
    template = body["template"]
    assert template["containers"][0]["image"] == (
        image.rsplit(":", 1)[0] + "@" + build["results"]["images"][0]["digest"]
    )
    assert template["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert template["containers"][0]["ports"] == [{"name": "http1", "containerPort": 8080}]
    assert template["scaling"] == {"maxInstanceCount": 3}  # min 0 is the default: omitted
    assert template["maxInstanceRequestConcurrency"] == 4
    assert template["timeout"] == "300s"
    assert template["serviceAccount"] == SA
    assert body["ingress"] == 1  # INGRESS_TRAFFIC_ALL
    assert google_fake.requests("GET", r"/operations/")  # the LRO was really polled

    # Invoker: public, the app checks the key.
    assert google_fake.policies[SERVICE]["bindings"] == [
        {"role": "roles/run.invoker", "members": ["allUsers"]}
    ]
    assert result.url == "https://math-rewards-abc123xyz-uc.a.run.app"
    assert result.details["created"] is True
    assert 'ApiKey(os.environ["RK_API_KEY"])' in result.sdk_snippet
    assert any("Cloud Build" in line for line in steps.lines)


def test_redeploy_updates_in_place_and_keeps_the_key(
    google_fake: GoogleFake, artifacts: Artifacts
) -> None:
    deployer = target(google_fake)
    deployer.deploy(spec(), artifacts, Steps())
    second = deployer.deploy(spec(max_instances=7), artifacts, Steps())

    assert "api_key" not in second.details
    assert second.details["created"] is False
    assert len(google_fake.requests("POST", r"/services$")) == 1
    [patch] = google_fake.requests("PATCH", r"/services/math-rewards$")
    assert patch.body["etag"] == "etag-1"
    assert patch.path == f"/v2/{SERVICE}"
    assert patch.body["template"]["scaling"]["maxInstanceCount"] == 7
    assert env_of(patch.body)["RK_API_KEYS"]["secretKeyRef"]["version"] == "1"
    assert len(google_fake.requests("POST", r"/repositories$")) == 1
    assert len(google_fake.requests("POST", r":addVersion$")) == 1
    assert google_fake.services[SERVICE]["generation"] == "2"


def test_rotate_key_adds_a_version_and_pins_it(
    google_fake: GoogleFake, artifacts: Artifacts
) -> None:
    deployer = target(google_fake)
    first = deployer.deploy(spec(), artifacts, Steps())
    second = deployer.deploy(spec(rotate_key=True), artifacts, Steps())
    assert second.details["api_key"] != first.details["api_key"]
    [patch] = google_fake.requests("PATCH", r"/services/")
    assert env_of(patch.body)["RK_API_KEYS"]["secretKeyRef"]["version"] == "2"


def test_google_iam_grants_only_the_members_and_sets_the_audience(
    google_fake: GoogleFake, artifacts: Artifacts
) -> None:
    # A previous public deploy must not leave allUsers behind.
    google_fake.policies[SERVICE] = {
        "bindings": [
            {"role": "roles/run.invoker", "members": ["allUsers"]},
            {"role": "roles/run.developer", "members": ["user:dev@example.com"]},
        ]
    }
    result = target(google_fake).deploy(
        spec("google-iam", service_account=None, invokers=[TRAINER]), artifacts, Steps()
    )
    assert sorted(google_fake.policies[SERVICE]["bindings"], key=lambda b: b["role"]) == [
        {"role": "roles/run.developer", "members": ["user:dev@example.com"]},
        {"role": "roles/run.invoker", "members": [TRAINER]},
    ]
    [create] = google_fake.requests("POST", r"/services$")
    assert create.body["customAudiences"] == ["reward-kit:my-proj-1:europe-west1:math-rewards"]
    assert env_of(create.body)["RK_GOOGLE_AUDIENCES"] == create.body["customAudiences"][0]
    # Once the URL exists the server is told to accept it as an audience too.
    [patch] = google_fake.requests("PATCH", r"/services/")
    audiences = env_of(patch.body)["RK_GOOGLE_AUDIENCES"].split(",")
    assert result.url in audiences
    assert len(audiences) == 3
    assert (
        env_of(patch.body)["RK_GOOGLE_ALLOWED_EMAILS"]
        == "trainer@my-proj-1.iam.gserviceaccount.com"
    )
    assert not google_fake.requests("POST", r"/secrets")
    assert "GoogleIdToken()" in result.sdk_snippet
    # No --service-account: a dedicated one, with no roles, not the default compute account.
    runtime = "rk-math-rewards@my-proj-1.iam.gserviceaccount.com"
    assert create.body["template"]["serviceAccount"] == runtime
    assert list(google_fake.service_accounts) == [runtime]
    assert result.details["service_account"] == runtime


def test_api_errors_are_surfaced_verbatim(google_fake: GoogleFake, artifacts: Artifacts) -> None:
    google_fake.fail[("POST", r"/services$")] = (
        403,
        "Permission 'run.services.create' denied on resource 'math-rewards'",
    )
    with pytest.raises(DeployError, match=r"run CreateService failed: 403 .*run\.services\.create"):
        target(google_fake).deploy(spec(), artifacts, Steps())


def test_a_failed_build_names_its_status_and_logs(
    google_fake: GoogleFake, artifacts: Artifacts
) -> None:
    google_fake.build_status = BUILD_FAILURE
    with pytest.raises(DeployError, match=r"ended FAILURE: step 0 exited 1 \(logs: https://"):
        target(google_fake).deploy(spec(), artifacts, Steps())
    assert not google_fake.requests("POST", r"/services$")


def test_status_and_delete(google_fake: GoogleFake, artifacts: Artifacts) -> None:
    deployer = target(google_fake)
    deployer.deploy(spec(), artifacts, Steps())
    options = CloudRunOptions(project="my-proj-1", region="europe-west1")
    status = deployer.status("math-rewards", options)
    assert status["ready"] is True
    assert status["max_instances"] == 3
    assert status["url"] == "https://math-rewards-abc123xyz-uc.a.run.app"
    deployer.delete("math-rewards", options, Steps())
    assert not google_fake.services
    assert not google_fake.secrets
    with pytest.raises(DeployError, match="404"):
        deployer.status("math-rewards", options)


@pytest.mark.parametrize(
    ("auth", "options", "message"),
    [
        ("api-key", {"project": None}, "needs a project: pass --project"),
        ("api-key", {"project": "Bad_Project"}, "not a Google Cloud project ID"),
        (
            "api-key",
            {"service_account": "123456789-compute@developer.gserviceaccount.com"},
            "one of Google's default service accounts",
        ),
        ("api-key", {"service_account": "my-proj-1@appspot.gserviceaccount.com"}, "default"),
        ("api-key", {"invokers": [TRAINER]}, "--invoker has no effect with --auth api-key"),
        ("none", {}, "--auth none on gcp-cloud-run makes a public evaluator"),
        ("mtls", {}, "does not support --auth mtls"),
        ("google-iam", {}, "needs at least one --invoker"),
        ("google-iam", {"invokers": ["trainer@x.com"]}, "must look like serviceAccount:"),
        ("api-key", {"min_instances": 5, "max_instances": 2}, "min_instances (5) is above"),
        ("api-key", {"concurrency": 0}, "concurrency must be an integer 1-1000"),
        ("api-key", {"ingress": "public"}, "ingress must be one of"),
    ],
)
def test_bad_options_fail_before_any_call(
    google_fake: GoogleFake, auth: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        target(google_fake).check(spec(auth, **options))
    assert google_fake.calls == []


def test_missing_credentials_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The real google.auth.default() lookup, pointed at a file that is not there.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="no Google credentials found"):
        CloudRunTarget().check(spec())


def test_plan_calls_nothing_and_redacts(
    google_fake: GoogleFake, artifacts: Artifacts, tmp_path: Path
) -> None:
    deployer = target(google_fake)
    calls = deployer.plan(spec(), artifacts)
    path = write_plan(artifacts.out_dir, "gcp-cloud-run", calls)
    assert google_fake.calls == []
    text = path.read_text()
    plan = json.loads(text)
    methods = [c["method"] for c in plan["calls"]]
    assert methods[0] == "GetRepository/CreateRepository"
    assert methods[-1] == "SetIamPolicy"
    secret_call = next(c for c in plan["calls"] if c["service"] == "secretmanager")
    assert secret_call["request"]["payload"] == "<redacted>"
    assert "sha256:" not in text
    assert "rk_" not in text
    assert (artifacts.out_dir / "source.tar.gz").is_file()
