"""``rk deploy``: routing (SOURCE vs status/delete), config + flags, dry-run, real deploys
against the Google REST fake (in-process) and a moto server (the CLI as a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reward_kit.cli import cli
from reward_kit.deploy import Artifacts, _registry

from ..conftest import QUICKSTART
from ._gcp_fake import GoogleFake, serve_google_fake


@pytest.fixture
def google_fake() -> Iterator[GoogleFake]:
    yield from serve_google_fake()


SA = "evaluator@my-proj-1.iam.gserviceaccount.com"


@pytest.fixture
def gcp_cli(google_fake: GoogleFake, monkeypatch: pytest.MonkeyPatch) -> GoogleFake:
    pytest.importorskip("google.cloud.run_v2")
    from google.auth.credentials import AnonymousCredentials

    from reward_kit.deploy import CloudRunTarget

    monkeypatch.setitem(
        _registry.FACTORIES,
        "gcp-cloud-run",
        lambda: CloudRunTarget(credentials=AnonymousCredentials(), endpoint=google_fake.endpoint),
    )
    return google_fake


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_deploy_source_runs_up_and_status_delete_are_subcommands(
    gcp_cli: GoogleFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reward-kit.toml").write_text(
        '[deploy.gcp-cloud-run]\nproject = "my-proj-1"\nregion = "europe-west1"\n'
        f'service-account = "{SA}"\nmax-instances = 2\n'
    )
    # The real build (Docker context with the reward-kit wheel) against the fake control plane.
    result = invoke(
        "deploy", QUICKSTART, "--target", "gcp-cloud-run", "--name", "math-rewards",
        "--max-instances", "6", "--concurrency", "8",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "url:  https://math-rewards-abc123xyz-uc.a.run.app" in result.output
    assert "auth: api-key" in result.output
    assert "export RK_API_KEY=rk_" in result.output
    snippet = result.output.split("# SDK:\n", 1)[1]
    assert '    "https://math-rewards-abc123xyz-uc.a.run.app",\n' in snippet
    compile(snippet, "snippet", "exec")  # ready to paste: valid Python as printed
    [create] = gcp_cli.requests("POST", r"/services$")
    template = create.body["template"]
    assert template["scaling"]["maxInstanceCount"] == 6  # the flag beat the file's 2
    assert template["maxInstanceRequestConcurrency"] == 8
    assert create.path.startswith("/v2/projects/my-proj-1/locations/europe-west1/")  # from file
    [(_, tarball)] = gcp_cli.objects.items()
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        names = tar.getnames()
    assert "Dockerfile" in names
    assert any(n.endswith(".whl") for n in names)
    # No artifact on disk holds the key or its hash.
    key = result.output.split("export RK_API_KEY=", 1)[1].split()[0]
    for path in (tmp_path / "build").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes()

    status = invoke("deploy", "status", "math-rewards", "--target", "gcp-cloud-run")
    assert status.exit_code == 0
    assert "ready: True" in status.output
    assert "max_instances: 6" in status.output

    refused = CliRunner().invoke(
        cli, ["deploy", "delete", "math-rewards", "--target", "gcp-cloud-run"], input="n\n"
    )
    assert refused.exit_code == 1
    assert gcp_cli.services
    deleted = invoke("deploy", "delete", "math-rewards", "--target", "gcp-cloud-run", "--yes")
    assert deleted.exit_code == 0
    assert not gcp_cli.services


def test_explicit_up_and_a_rerun_updates(gcp_cli: GoogleFake, tmp_path: Path) -> None:
    args = ["--target", "gcp-cloud-run", "--name", "math-rewards", "--project", "my-proj-1",
            "--service-account", SA, "--out", str(tmp_path / "out")]  # fmt: skip
    assert invoke("deploy", "up", QUICKSTART, *args).exit_code == 0
    again = invoke("deploy", QUICKSTART, *args)
    assert again.exit_code == 0
    assert "RK_API_KEY" not in again.output.split("# SDK:")[0]
    assert len(gcp_cli.requests("PATCH", r"/services/math-rewards$")) == 1


def test_dry_run_calls_nothing_and_writes_a_redacted_plan(
    gcp_cli: GoogleFake, tmp_path: Path
) -> None:
    out = tmp_path / "plan"
    result = invoke(
        "deploy", QUICKSTART, "--target", "gcp-cloud-run", "--name", "math-rewards",
        "--project", "my-proj-1", "--service-account", SA, "--dry-run", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert gcp_cli.calls == []
    plan = json.loads((out / "plan.json").read_text())
    assert [c["service"] for c in plan["calls"]] == [
        "artifactregistry", "storage", "cloudbuild", "secretmanager", "secretmanager", "run", "run",
    ]  # fmt: skip
    assert (out / "context" / "Dockerfile").is_file()
    assert (out / "source.tar.gz").is_file()
    assert "sha256:" not in (out / "plan.json").read_text()


def run_rk(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reward_kit.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Bad_Name"], "error: invalid deploy name 'Bad_Name'"),
        (["--name", "ok-name", "--auth", "mtls"], "error: aws-lambda does not support --auth mtls"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = {**os.environ, "AWS_REGION": "us-east-1"}
    proc = run_rk("deploy", QUICKSTART, "--target", "aws-lambda", "--dry-run", *args,
                  env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_reward_file_that_does_not_import_fails_before_any_call(
    gcp_cli: GoogleFake, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    with pytest.raises(Exception, match="not_a_module_anywhere"):
        invoke("deploy", str(broken), "--target", "gcp-cloud-run", "--name", "math-rewards",
               "--project", "my-proj-1", "--service-account", SA,
               "--out", str(tmp_path / "o"))  # fmt: skip
    assert gcp_cli.calls == []


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    # /moto-api/config takes the lambda settings but not iam's; the server thread reads this.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    config = {"lambda": {"use_docker": False}}
    request = urllib.request.Request(
        f"{url}/moto-api/config", data=json.dumps(config).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=10).close()
    try:
        yield url
    finally:
        server.stop()


def test_aws_lambda_cli_subprocess_against_a_moto_server(moto_server: str, tmp_path: Path) -> None:
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    with zipfile.ZipFile(prebuilt / "math-rewards.zip", "w") as bundle:
        bundle.writestr("rk_lambda.py", "def handler(event, context):\n    return {}\n")
    # What `rk build` writes next to the zip: --from-build deploys what was built.
    Artifacts(out_dir=prebuilt, lambda_zip=prebuilt / "math-rewards.zip").write_manifest()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ENDPOINT_URL": moto_server,  # boto3 sends every service there
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    common = ["--target", "aws-lambda", "--region", "eu-west-1"]
    proc = run_rk("deploy", QUICKSTART, "--name", "math-rewards", "--from-build", str(prebuilt),
                  "--auth", "aws-iam", "--invoker", "arn:aws:iam::123456789012:role/trainer",
                  *common, env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "auth: aws-iam" in proc.stdout
    assert ".lambda-url.eu-west-1.on.aws" in proc.stdout
    assert 'AwsSigV4(region="eu-west-1")' in proc.stdout
    assert "-> creating function rk-math-rewards" in proc.stderr  # steps shown as they happen

    import boto3

    lam = boto3.client("lambda", region_name="eu-west-1", endpoint_url=moto_server,
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    assert lam.get_function_url_config(FunctionName="rk-math-rewards")["AuthType"] == "AWS_IAM"

    status = run_rk("deploy", "status", "math-rewards", "--json", *common, env=env, cwd=tmp_path)
    assert json.loads(status.stdout)["state"] == "Active"
    deleted = run_rk("deploy", "delete", "math-rewards", "--yes", *common, env=env, cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert lam.list_functions()["Functions"] == []
