"""Deploy defaults (issue 11): no public evaluator by accident, no ignored security flag,
dedicated least-privilege identities (a Cloud Run service account with no roles, a Lambda role
under a permissions boundary), and a reserved Lambda concurrency.

Everything runs the real deployers: the CLI (``rk deploy`` through click) and the targets,
against the local Google REST fake (tests/deploy/_gcp_fake.py) and moto. The deployer
policies themselves are evaluated in tests/deploy/test_deployer_iam.py, and what ``rk build``
bundles in tests/deploy/test_build_bundle.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reward_kit._errors import ConfigurationError
from reward_kit.deploy import DeployError, DeploySpec, LambdaOptions, LocalTarget

from ..conftest import QUICKSTART
from ..deploy._clouds import (  # noqa: F401 - fixtures
    ACCOUNT,
    AWS_ARGS,
    GCP_ARGS,
    PROJECT,
    REGION,
    RUNTIME_SA,
    Steps,
    aws_fixture,
    cloud_run,
    docker_artifacts,
    gcp_spec,
    google_fake_fixture,
    invoke,
    lambda_target,
    prebuilt_fixture,
    zip_artifacts,
)
from ..deploy._gcp_fake import GoogleFake

pytest.importorskip("boto3")
pytest.importorskip("moto")
pytest.importorskip("google.cloud.run_v2")

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
IN_REGION = LambdaOptions(region=REGION)


# -- 1. a public unauthenticated evaluator needs an explicit flag -----------------------------


def test_auth_none_on_cloud_run_is_refused_before_any_call(
    google_fake: GoogleFake, tmp_path: Path
) -> None:
    for extra in ((), ("--ingress", "internal"), ("--dry-run",)):
        result = invoke("deploy", QUICKSTART, *GCP_ARGS, "--auth", "none", "--out",
                        str(tmp_path / "o"), *extra)  # fmt: skip
        assert result.exit_code != 0
        assert "--auth none on gcp-cloud-run makes a public evaluator" in str(result.exception)
    assert google_fake.calls == []


def test_auth_none_on_lambda_is_refused_before_any_call(aws: Any, prebuilt: Path) -> None:
    result = invoke("deploy", QUICKSTART, *AWS_ARGS, "--auth", "none", "--from-build",
                    str(prebuilt))  # fmt: skip
    assert result.exit_code != 0
    assert "--auth none on aws-lambda makes a public evaluator" in str(result.exception)
    assert aws.client("lambda").list_functions()["Functions"] == []
    assert aws.client("iam").list_roles()["Roles"] == []


def test_a_target_driven_directly_refuses_too(aws: Any, prebuilt: Path) -> None:
    # Code that skips check() and calls deploy() is refused the same way.
    spec = DeploySpec(name="math-rewards", sources=(QUICKSTART,), auth="none",
                      options=LambdaOptions(region=REGION))  # fmt: skip
    with pytest.raises(ConfigurationError, match="makes a public evaluator"):
        lambda_target(aws).deploy(spec, zip_artifacts(prebuilt), Steps())
    with pytest.raises(ConfigurationError, match="makes a public evaluator"):
        lambda_target(aws).plan(spec, zip_artifacts(prebuilt))
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_allow_unauthenticated_deploys_with_a_loud_warning(
    google_fake: GoogleFake, aws: Any, prebuilt: Path, tmp_path: Path
) -> None:
    result = invoke("deploy", QUICKSTART, *GCP_ARGS, "--auth", "none",
                    "--allow-unauthenticated", "--out", str(tmp_path / "o"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "WARNING: --allow-unauthenticated: gcp-cloud-run will run your reward functions" in (
        result.output
    )
    assert "auth: none (PUBLIC" in result.output
    [binding] = google_fake.policies[f"projects/{PROJECT}/locations/us-central1/services/"
                                      "math-rewards"]["bindings"]  # fmt: skip
    assert binding == {"role": "roles/run.invoker", "members": ["allUsers"]}

    result = invoke("deploy", QUICKSTART, *AWS_ARGS, "--auth", "none",
                    "--allow-unauthenticated", "--from-build", str(prebuilt))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "WARNING: --allow-unauthenticated: aws-lambda" in result.output
    url = aws.client("lambda").get_function_url_config(FunctionName="rk-math-rewards")
    assert url["AuthType"] == "NONE"


@pytest.mark.parametrize(
    ("config", "flags", "message"),
    [
        ('[deploy]\nauth = "none"\nallow-unauthenticated = true\n', (),
         "cannot be set in a config file"),
        ('[deploy.gcp-cloud-run]\nallow_unauthenticated = true\n', ("--auth", "none"),
         "cannot be set in a config file"),
        ("", ("--auth", "none", "-o", "allow_unauthenticated=false"),
         "makes a public evaluator"),
        ("", ("--auth", "none", "-o", "allow_unauthenticated=maybe"),
         "allow_unauthenticated must be true or false"),
        ("", ("--allow-unauthenticated",), "only goes with --auth none"),
    ],
)  # fmt: skip
def test_consent_comes_only_from_an_explicit_flag(
    google_fake: GoogleFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: str,
    flags: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reward-kit.toml").write_text(config)
    result = invoke("deploy", QUICKSTART, *GCP_ARGS, *flags)
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert google_fake.calls == []


def test_local_containers_may_stay_open_on_loopback() -> None:
    # The local target publishes on 127.0.0.1 only: no flag needed there.
    LocalTarget().check(DeploySpec(name="demo", sources=("r.py",), auth="none"), dry_run=True)


# -- 2. no option is silently ignored -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((*GCP_ARGS, "--invoker", f"serviceAccount:trainer@{PROJECT}.iam.gserviceaccount.com"),
         "--invoker has no effect with --auth api-key"),
        ((*AWS_ARGS, "--invoker", f"arn:aws:iam::{ACCOUNT}:role/trainer"),
         "--invoker has no effect with --auth api-key"),
        ((*AWS_ARGS, "--aws-allow-arn", f"arn:aws:iam::{ACCOUNT}:*"),
         "--aws-allow-arn has no effect with --auth api-key"),
    ],
)  # fmt: skip
def test_invoker_with_api_key_is_refused(
    google_fake: GoogleFake, aws: Any, prebuilt: Path, args: tuple[str, ...], message: str
) -> None:
    result = invoke("deploy", QUICKSTART, *args, "--from-build", str(prebuilt))
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert google_fake.calls == []
    assert aws.client("lambda").list_functions()["Functions"] == []


@pytest.mark.parametrize("auth", ["api-key", "google-iam"])
def test_without_service_account_a_dedicated_one_is_made(
    google_fake: GoogleFake, tmp_path: Path, auth: str
) -> None:
    options = {"invokers": [f"user:me@{PROJECT}.example"]} if auth == "google-iam" else {}
    result = cloud_run(google_fake).deploy(gcp_spec(auth, **options), docker_artifacts(tmp_path),
                                           Steps())  # fmt: skip
    [create] = google_fake.requests("POST", r"/services$")
    assert create.body["template"]["serviceAccount"] == RUNTIME_SA
    [made] = google_fake.requests("POST", r"/serviceAccounts$")
    assert made.body["accountId"] == "rk-math-rewards"
    assert "roles" not in json.dumps(made.body)  # created with nothing; no project IAM call
    assert not google_fake.requests("POST", r":setIamPolicy$") or all(
        "/services/" in c.path or "/secrets/" in c.path
        for c in google_fake.requests("POST", r":setIamPolicy$")
    )
    if auth == "api-key":  # its only grant: read its own key secret
        secret = f"projects/{PROJECT}/secrets/rk-math-rewards-api-key"
        assert google_fake.policies[secret]["bindings"] == [
            {"role": "roles/secretmanager.secretAccessor",
             "members": [f"serviceAccount:{RUNTIME_SA}"]}
        ]  # fmt: skip
    assert result.details["service_account"] == RUNTIME_SA
    # A redeploy finds it and makes nothing new.
    cloud_run(google_fake).deploy(gcp_spec(auth, **options), docker_artifacts(tmp_path), Steps())
    assert len(google_fake.requests("POST", r"/serviceAccounts$")) == 1


@pytest.mark.parametrize(
    "account",
    [
        "123456789012-compute@developer.gserviceaccount.com",
        f"{PROJECT}@appspot.gserviceaccount.com",
        "123456789012@cloudbuild.gserviceaccount.com",
        "not-an-email",
    ],
)
def test_default_service_accounts_are_refused(google_fake: GoogleFake, account: str) -> None:
    with pytest.raises(ConfigurationError, match="service account"):
        cloud_run(google_fake).check(gcp_spec(service_account=account))
    assert google_fake.calls == []


def test_no_permission_to_create_the_account_says_what_to_do(
    google_fake: GoogleFake, tmp_path: Path
) -> None:
    google_fake.fail[("POST", r"/serviceAccounts$")] = (403, "Permission denied")
    with pytest.raises(DeployError, match=r"gcloud iam service-accounts create rk-math-rewards"):
        cloud_run(google_fake).deploy(gcp_spec(), docker_artifacts(tmp_path), Steps())
    assert not google_fake.requests("POST", r"/services$")


def test_a_fresh_account_not_yet_visible_is_waited_for(
    google_fake: GoogleFake, tmp_path: Path
) -> None:
    # IAM is eventually consistent: right after creation, other services may not know it.
    unknown = (400, f"Service account {RUNTIME_SA} does not exist.", 2)
    google_fake.flaky[("POST", r"/secrets/[^/:]+:setIamPolicy$")] = list(unknown)
    google_fake.flaky[("POST", r"/services$")] = list(unknown)
    cloud_run(google_fake).deploy(gcp_spec(), docker_artifacts(tmp_path), Steps())
    assert len(google_fake.requests("POST", r"/services$")) == 3


# -- 4. AWS: a dedicated bounded role, reserved concurrency -----------------------------------


def test_lambda_reserves_concurrency_by_default_and_none_removes_it(
    aws: Any, prebuilt: Path
) -> None:
    spec = DeploySpec(name="math-rewards", sources=(QUICKSTART,), options=IN_REGION)
    result = lambda_target(aws).deploy(spec, zip_artifacts(prebuilt), Steps())
    lam = aws.client("lambda")
    assert lam.get_function(FunctionName="rk-math-rewards")["Concurrency"] == {
        "ReservedConcurrentExecutions": 10
    }
    assert result.details["reserved_concurrency"] == 10
    none = DeploySpec(name="math-rewards", sources=(QUICKSTART,),
                      options=LambdaOptions(region=REGION, reserved_concurrency=None))  # fmt: skip
    lambda_target(aws).deploy(none, zip_artifacts(prebuilt), Steps())
    assert "Concurrency" not in lam.get_function(FunctionName="rk-math-rewards")


def test_a_role_not_made_by_rk_deploy_is_never_passed(aws: Any, prebuilt: Path) -> None:
    iam = aws.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})  # fmt: skip
    iam.create_role(RoleName="rk-math-rewards-lambda", AssumeRolePolicyDocument=trust)
    iam.attach_role_policy(RoleName="rk-math-rewards-lambda", PolicyArn=ADMIN)
    spec = DeploySpec(name="math-rewards", sources=(QUICKSTART,), options=IN_REGION)
    with pytest.raises(DeployError, match="does not pass a role it cannot vouch for"):
        lambda_target(aws).deploy(spec, zip_artifacts(prebuilt), Steps())
    assert aws.client("lambda").list_functions()["Functions"] == []


# -- 5. an option means what it says: -o is not dropped, a string is not a boolean ------------

SECRET_ID = "reward-kit/math-rewards/api-key"


def test_o_rotate_key_false_keeps_the_live_key_on_lambda(aws: Any, prebuilt: Path) -> None:
    deploy = ("deploy", QUICKSTART, *AWS_ARGS, "--from-build", str(prebuilt))
    first = invoke(*deploy)
    assert first.exit_code == 0, first.output
    secrets = aws.client("secretsmanager")
    live = secrets.get_secret_value(SecretId=SECRET_ID)["SecretString"]
    kept = invoke(*deploy, "-o", "rotate_key=false")
    assert kept.exit_code == 0, kept.output
    assert "RK_API_KEY=" not in kept.output  # bool("false") would have rotated it
    assert secrets.get_secret_value(SecretId=SECRET_ID)["SecretString"] == live
    rotated = invoke(*deploy, "-o", "rotate_key=yes")
    assert "RK_API_KEY=" in rotated.output
    assert secrets.get_secret_value(SecretId=SECRET_ID)["SecretString"] != live


def test_o_rotate_key_false_keeps_the_live_key_on_cloud_run(
    google_fake: GoogleFake, tmp_path: Path
) -> None:
    deploy = ("deploy", QUICKSTART, *GCP_ARGS, "--out", str(tmp_path / "o"))
    assert invoke(*deploy).exit_code == 0
    kept = invoke(*deploy, "-o", "rotate_key=false")
    assert kept.exit_code == 0, kept.output
    assert "RK_API_KEY=" not in kept.output
    assert len(google_fake.requests("POST", r":addVersion$")) == 1
    assert "RK_API_KEY=" in invoke(*deploy, "-o", "rotate_key=true").output
    assert len(google_fake.requests("POST", r":addVersion$")) == 2


def test_o_concurrency_reaches_the_service(google_fake: GoogleFake, tmp_path: Path) -> None:
    result = invoke("deploy", QUICKSTART, *GCP_ARGS, "--out", str(tmp_path / "o"),
                    "-o", "concurrency=8", "-o", "max-instances=3")  # fmt: skip
    assert result.exit_code == 0, result.output
    [create] = google_fake.requests("POST", r"/services$")
    assert create.body["template"]["maxInstanceRequestConcurrency"] == 8
    assert create.body["template"]["scaling"]["maxInstanceCount"] == 3


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ("deploy.gcp-cloud-run", 'rotate-key = "false"'),
        ("deploy.aws-lambda", 'rotate_key = "false"'),
        ("deploy", 'rotate-key = "no"'),
        ("deploy.aws-lambda", "rotate-key = 0"),
    ],
)
def test_a_rotate_key_that_is_not_a_toml_boolean_is_refused(
    google_fake: GoogleFake, aws: Any, prebuilt: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, table: str, line: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reward-kit.toml").write_text(f"[{table}]\n{line}\n")
    targets = [args for args in (GCP_ARGS, AWS_ARGS) if args[1] in table or table == "deploy"]
    for args in targets:
        result = invoke("deploy", QUICKSTART, *args, "--from-build", str(prebuilt))
        assert result.exit_code != 0
        message = str(result.exception)
        assert "rotate_key must be true or false, got" in message, message
        assert f"reward-kit.toml [{table}])" in message
    assert google_fake.calls == []
    assert aws.client("secretsmanager").list_secrets()["SecretList"] == []
