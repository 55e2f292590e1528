"""What the deploy security tests share: the Google REST fake and moto, wired into the CLI.

``google_fake`` and ``aws`` also register the targets in ``_registry.FACTORIES``, so ``rk deploy``
run through click talks to them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reward_kit.cli import cli
from reward_kit.deploy import Artifacts, CloudRunOptions, DeploySpec, LambdaTarget, _registry

from ..conftest import QUICKSTART
from ._gcp_fake import GoogleFake, serve_google_fake

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PROJECT = "my-proj-1"
RUNTIME_SA = f"rk-math-rewards@{PROJECT}.iam.gserviceaccount.com"
GCP_ARGS = ("--target", "gcp-cloud-run", "--name", "math-rewards", "--project", PROJECT)
AWS_ARGS = ("--target", "aws-lambda", "--name", "math-rewards", "--region", REGION)


class Steps:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


# -- fixtures: the Google fake and moto, wired into the CLI ---------------------------------


@pytest.fixture(name="google_fake")
def google_fake_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleFake]:
    served = serve_google_fake()
    fake = next(served)
    monkeypatch.setitem(_registry.FACTORIES, "gcp-cloud-run", lambda: cloud_run(fake))
    yield fake
    next(served, None)  # stops the server


@pytest.fixture(name="aws")
def aws_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = {"iam": {"load_aws_managed_policies": True}, "lambda": {"use_docker": False}}
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    with moto.mock_aws(config=config):  # type: ignore[arg-type]
        session = boto3.session.Session(region_name=REGION)
        monkeypatch.setitem(_registry.FACTORIES, "aws-lambda", lambda: lambda_target(session))
        yield session


def lambda_target(session: Any) -> Any:
    return LambdaTarget(session=session, waiter_delay=1, role_retry_delay=0)


@pytest.fixture(name="prebuilt")
def prebuilt_fixture(tmp_path: Path) -> Path:
    """An `rk build --format lambda-zip` folder (a stub zip: moto never runs the code)."""
    folder = tmp_path / "prebuilt"
    folder.mkdir()
    with zipfile.ZipFile(folder / "math-rewards.zip", "w") as bundle:
        bundle.writestr("rk_lambda.py", "def handler(event, context):\n    return {}\n")
    Artifacts(out_dir=folder, lambda_zip=folder / "math-rewards.zip").write_manifest()
    return folder


def zip_artifacts(prebuilt: Path) -> Artifacts:
    return Artifacts(out_dir=prebuilt, lambda_zip=prebuilt / "math-rewards.zip")


def cloud_run(fake: GoogleFake) -> Any:
    from google.auth.credentials import AnonymousCredentials

    from reward_kit.deploy import CloudRunTarget

    return CloudRunTarget(
        credentials=AnonymousCredentials(), endpoint=fake.endpoint, account_retry_delay=0
    )


def docker_artifacts(tmp_path: Path) -> Artifacts:
    context = tmp_path / "out" / "context"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text("FROM python:3.11-slim\n")
    return Artifacts(out_dir=tmp_path / "out", docker_context=context)


def gcp_spec(auth: str = "api-key", **options: Any) -> DeploySpec:
    return DeploySpec(name="math-rewards", sources=(QUICKSTART,), auth=auth,  # type: ignore[arg-type]
                      options=CloudRunOptions(project=PROJECT, **options))  # fmt: skip
