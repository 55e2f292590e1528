"""aws-lambda against moto in-process (control plane), with an event hook for what moto drops."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward_kit._errors import ConfigurationError
from reward_kit.deploy import (
    ArtifactKind,
    Artifacts,
    DeployError,
    DeploySpec,
    LambdaOptions,
    LambdaTarget,
    prebuilt_artifacts,
    write_plan,
)
from reward_kit.deploy._policies import policy_document
from reward_kit.deploy.targets.aws_lambda import _bundle

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

ROLE = "arn:aws:iam::123456789012:role/trainer"
FUNCTION = "rk-math-rewards"  # rk- prefixed: the deployer policy only reaches rk-* functions
BOUNDARY = "arn:aws:iam::123456789012:policy/reward-kit/reward-kit-lambda-boundary"


class Steps:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = {"iam": {"load_aws_managed_policies": True}, "lambda": {"use_docker": False}}
    with moto.mock_aws(config=config):  # type: ignore[arg-type]
        yield boto3.session.Session(region_name="eu-west-1")


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    bundle = tmp_path / "math-rewards.zip"
    with zipfile.ZipFile(bundle, "w") as zipped:
        zipped.writestr("rk_lambda.py", "def handler(event, context):\n    return {}\n")
    return Artifacts(
        out_dir=tmp_path,
        lambda_zip=bundle,
        handler="rk_lambda.handler",
        runtime="python3.11",
        architecture="arm64",
    )


def spec(auth: str = "api-key", **options: Any) -> DeploySpec:
    return DeploySpec(
        name="math-rewards",
        sources=("rewards.py",),
        auth=auth,  # type: ignore[arg-type]
        options=LambdaOptions(**{"memory": 2048, "timeout": 120, **options}),
    )


def target(session: Any) -> LambdaTarget:
    return LambdaTarget(session=session, waiter_delay=1, role_retry_delay=0)


def capture_add_permission(session: Any) -> list[dict[str, Any]]:
    # moto's get_policy does not render FunctionUrlAuthType / InvokedViaFunctionUrl
    # conditions, so the request parameters themselves are checked (clients inherit the hook).
    seen: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    session.events.register("provide-client-params.lambda.AddPermission", hook)
    return seen


def test_api_key_deploy_creates_role_secret_function_and_public_url(
    aws: Any, artifacts: Artifacts
) -> None:
    permissions = capture_add_permission(aws)
    result = target(aws).deploy(spec(reserved_concurrency=5), artifacts, Steps())

    key = result.details["api_key"]
    sm = aws.client("secretsmanager")
    secret = sm.get_secret_value(SecretId="reward-kit/math-rewards/api-key")
    assert secret["SecretString"] == f"deploy sha256:{hashlib.sha256(key.encode()).hexdigest()}"

    iam = aws.client("iam")
    role = iam.get_role(RoleName="rk-math-rewards-lambda")["Role"]
    # A dedicated role under /reward-kit/, fenced by the boundary rk deploy made from its file.
    assert role["Arn"] == "arn:aws:iam::123456789012:role/reward-kit/rk-math-rewards-lambda"
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY
    version = iam.get_policy(PolicyArn=BOUNDARY)["Policy"]["DefaultVersionId"]
    boundary = iam.get_policy_version(PolicyArn=BOUNDARY, VersionId=version)["PolicyVersion"]
    document = boundary["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document == policy_document("aws-lambda-boundary", account="123456789012")
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName="rk-math-rewards-lambda")
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == [
        "AWSLambdaBasicExecutionRole"
    ]
    inline = iam.get_role_policy(
        RoleName="rk-math-rewards-lambda", PolicyName="reward-kit-read-api-key"
    )
    document = inline["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document["Statement"] == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret["ARN"]}
    ]

    lam = aws.client("lambda")
    function = lam.get_function(FunctionName=FUNCTION)
    config = function["Configuration"]
    assert config["Handler"] == "rk_lambda.handler"
    assert config["Runtime"] == "python3.11"
    assert config["MemorySize"] == 2048
    assert config["Timeout"] == 120
    assert config["Architectures"] == ["arm64"]
    assert config["Role"] == role["Arn"]
    assert config["Environment"]["Variables"] == {
        "RK_AUTH": "api-key",
        "RK_WORKERS": "0",
        "RK_API_KEY_SECRET_ARN": secret["ARN"],
    }
    assert key not in json.dumps(config, default=str)
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 5

    url = lam.get_function_url_config(FunctionName=FUNCTION)
    assert url["AuthType"] == "NONE"
    assert result.url == url["FunctionUrl"]
    assert sorted(permissions, key=lambda p: p["StatementId"]) == [
        {
            "FunctionName": FUNCTION,
            "StatementId": "rk-public-invoke",
            "Action": "lambda:InvokeFunction",
            "Principal": "*",
            "InvokedViaFunctionUrl": True,
        },
        {
            "FunctionName": FUNCTION,
            "StatementId": "rk-public-url",
            "Action": "lambda:InvokeFunctionUrl",
            "Principal": "*",
            "FunctionUrlAuthType": "NONE",
        },
    ]
    assert result.details["created"] is True
    assert (
        'auth=ApiKey(os.environ["RK_API_KEY"]),\n    max_batch_bytes=5_000_000,'
        in result.sdk_snippet
    )


def test_redeploy_updates_in_place_then_switching_to_aws_iam_swaps_permissions(
    aws: Any, artifacts: Artifacts
) -> None:
    deployer = target(aws)
    deployer.deploy(spec(), artifacts, Steps())
    again = deployer.deploy(spec(memory=512), artifacts, Steps())
    assert again.details["created"] is False
    assert "api_key" not in again.details
    lam = aws.client("lambda")
    assert lam.get_function(FunctionName=FUNCTION)["Configuration"]["MemorySize"] == 512

    permissions = capture_add_permission(aws)
    steps = Steps()
    iam_result = target(aws).deploy(spec("aws-iam", invokers=[ROLE]), artifacts, steps)
    assert lam.get_function_url_config(FunctionName=FUNCTION)["AuthType"] == "AWS_IAM"
    sids = {
        s["Sid"] for s in json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    }
    assert not {"rk-public-url", "rk-public-invoke"} & sids
    assert len(sids) == 2
    assert {p["Principal"] for p in permissions} == {ROLE}
    assert {p.get("FunctionUrlAuthType") for p in permissions} == {"AWS_IAM", None}
    env = lam.get_function(FunctionName=FUNCTION)["Configuration"]["Environment"]["Variables"]
    assert env["RK_AUTH"] == "aws-iam"
    assert env["RK_AWS_ALLOWED_ARNS"] == "arn:aws:sts::123456789012:assumed-role/trainer/*"
    assert "RK_API_KEY_SECRET_ARN" not in env
    assert 'AwsSigV4(region="eu-west-1")' in iam_result.sdk_snippet
    assert any("removing permission rk-public-url" in line for line in steps.lines)


def test_rotate_key_puts_a_new_hash(aws: Any, artifacts: Artifacts) -> None:
    first = target(aws).deploy(spec(), artifacts, Steps())
    second = target(aws).deploy(spec(rotate_key=True), artifacts, Steps())
    assert first.details["api_key"] != second.details["api_key"]
    value = aws.client("secretsmanager").get_secret_value(
        SecretId="reward-kit/math-rewards/api-key"
    )
    digest = hashlib.sha256(second.details["api_key"].encode()).hexdigest()
    assert value["SecretString"] == f"deploy sha256:{digest}"


def test_a_zip_over_the_direct_upload_limit_goes_through_s3(
    aws: Any, artifacts: Artifacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_bundle, "ZIPPED_LIMIT", 10)
    target(aws).deploy(spec(), artifacts, Steps())
    s3 = aws.client("s3")
    bucket = "reward-kit-123456789012-eu-west-1"
    [stored] = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert stored["Key"].startswith("lambda/math-rewards/")
    body = s3.get_object(Bucket=bucket, Key=stored["Key"])["Body"].read()
    assert body == Path(str(artifacts.lambda_zip)).read_bytes()


def test_an_oversize_bundle_fails_before_any_call(
    aws: Any, artifacts: Artifacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_bundle, "UNZIPPED_LIMIT", 10)
    with pytest.raises(ConfigurationError, match="unzipped, over Lambda's"):
        target(aws).deploy(spec(), artifacts, Steps())
    assert aws.client("lambda").list_functions()["Functions"] == []
    assert aws.client("iam").list_roles()["Roles"] == []


def test_api_errors_are_surfaced_verbatim(aws: Any, artifacts: Artifacts) -> None:
    # A role that does not exist: the CreateFunction error is retried (IAM propagation), then
    # reported with AWS's own code and message.
    missing = "arn:aws:iam::123456789012:role/missing"
    with pytest.raises(DeployError, match=r"lambda CreateFunction failed: .*InvalidParameterValue"):
        target(aws).deploy(spec(role_arn=missing), artifacts, Steps())


def test_status_and_delete_remove_everything(aws: Any, artifacts: Artifacts) -> None:
    deployer = target(aws)
    deployer.deploy(spec(), artifacts, Steps())
    status = deployer.status("math-rewards", LambdaOptions(region="eu-west-1"))
    assert status["state"] == "Active"
    assert status["url_auth"] == "NONE"
    deployer.delete("math-rewards", LambdaOptions(region="eu-west-1"), Steps())
    assert aws.client("lambda").list_functions()["Functions"] == []
    assert aws.client("iam").list_roles()["Roles"] == []
    assert aws.client("secretsmanager").list_secrets()["SecretList"] == []
    steps = Steps()
    deployer.delete("math-rewards", LambdaOptions(region="eu-west-1"), steps)  # idempotent
    assert any("already deleted" in line for line in steps.lines)


@pytest.mark.parametrize(
    ("auth", "options", "message"),
    [
        ("api-key", {"region": "mars"}, "is not a region like us-east-1"),
        ("mtls", {}, "does not support --auth mtls"),
        ("aws-iam", {}, "needs --invoker ARN"),
        ("aws-iam", {"invokers": ["trainer"]}, "must be an account ID or an IAM ARN"),
        ("api-key", {"memory": 64}, "memory must be an integer 128-10240"),
    ],
)
def test_bad_options_fail_before_any_call(
    aws: Any, auth: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        target(aws).check(spec(auth, **options))


def test_missing_region_and_credentials_are_clear(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    # No instance metadata here: do not let botocore wait for it.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigurationError, match="aws-lambda needs a region: pass --region"):
        LambdaTarget().check(spec())
    with pytest.raises(ConfigurationError, match="no AWS credentials found"):
        LambdaTarget().check(spec(region="us-east-1"))


def test_plan_is_redacted_and_calls_nothing(aws: Any, artifacts: Artifacts) -> None:
    calls = target(aws).plan(spec(region="eu-west-1"), artifacts)
    text = write_plan(artifacts.out_dir, "aws-lambda", calls).read_text()
    plan = json.loads(text)
    assert plan["calls"][0]["request"]["SecretString"] == "<redacted>"
    assert "sha256:" not in text
    assert aws.client("lambda").list_functions()["Functions"] == []
    with zipfile.ZipFile(io.BytesIO(Path(str(artifacts.lambda_zip)).read_bytes())) as bundle:
        assert bundle.namelist() == ["rk_lambda.py"]


def test_a_prebuilt_zip_deploys_as_what_it_was_built_for(
    aws: Any, artifacts: Artifacts, tmp_path: Path
) -> None:
    # rk build wrote the manifest (arm64); this deploy's own options say x86_64.
    built = tmp_path / "build"
    built.mkdir()
    zipped = built / "math-rewards.zip"
    zipped.write_bytes(artifacts.lambda_zip.read_bytes())  # type: ignore[union-attr]
    Artifacts(
        out_dir=built, lambda_zip=zipped, runtime="python3.11", architecture="arm64"
    ).write_manifest()
    reuse = prebuilt_artifacts(built)
    found = reuse(spec(), ArtifactKind.LAMBDA_ZIP, tmp_path / "out")
    assert (found.architecture, found.lambda_zip) == ("arm64", zipped)
    target(aws).deploy(spec(architecture="x86_64"), found, Steps())
    config = aws.client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]
    assert config["Architectures"] == ["arm64"]


def test_a_build_folder_without_a_manifest_says_to_build_again(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="run rk build --out"):
        prebuilt_artifacts(tmp_path)(spec(), ArtifactKind.LAMBDA_ZIP, tmp_path / "out")
