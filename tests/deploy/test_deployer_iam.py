"""The deployer permissions rk deploy documents: enough for every deploy step, nothing to
escalate with.

AWS: the shipped deployer policy is enforced on every boto3 call a real deploy makes against
moto, by the evaluator of tests/deploy/_iam_policy.py, and privilege-escalation attempts are
made through the same enforced session. GCP: every REST call a real deploy makes to the Google
fake is mapped to the permission Google checks, and the shipped custom role must hold each
one and nothing that escalates. docs/deploy.md must show exactly the shipped files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reward_kit.deploy import CloudRunOptions, DeployError, DeploySpec, LambdaOptions
from reward_kit.deploy._policies import POLICY_NAMES, policy_document, policy_text
from reward_kit.deploy.targets.aws_lambda import _bundle

from ..conftest import QUICKSTART, ROOT
from ._clouds import (  # noqa: F401 - fixtures
    ACCOUNT,
    PROJECT,
    REGION,
    RUNTIME_SA,
    Steps,
    aws_fixture,
    cloud_run,
    docker_artifacts,
    gcp_spec,
    google_fake_fixture,
    lambda_target,
    prebuilt_fixture,
    zip_artifacts,
)
from ._gcp_fake import GoogleFake
from ._iam_policy import Enforcer, Request, allowed, moto_account

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")
pytest.importorskip("google.cloud.run_v2")

BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/reward-kit/reward-kit-lambda-boundary"
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
# The deployer policy docs/deploy.md showed before this fix: roles and PassRole on rk-*,
# unconditioned. The escalation tests run against it too, to show they can fail.
OLD_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["lambda:*"],
            "Resource": f"arn:aws:lambda:*:{ACCOUNT}:function:*",
        },
        {
            "Effect": "Allow",
            "Action": [
                "iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:TagRole", "iam:PassRole",
                "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies",
                "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
            ],
            "Resource": f"arn:aws:iam::{ACCOUNT}:role/rk-*",
        },
    ],
}  # fmt: skip


# -- the AWS deployer policy: enough for rk deploy, nothing to escalate with ---------------


def admin_creates_boundary() -> None:
    """What the administrator does once (docs/deploy.md), outside the deployer's session."""
    admin = boto3.session.Session(region_name=REGION).client("iam")
    admin.create_policy(
        PolicyName="reward-kit-lambda-boundary",
        Path="/reward-kit/",
        PolicyDocument=json.dumps(policy_document("aws-lambda-boundary", account=ACCOUNT)),
    )


@pytest.fixture
def deployer(aws: Any) -> Enforcer:
    """The session rk deploy uses, with every call checked against the shipped policy."""
    enforcer = Enforcer(
        policy=policy_document("aws-deployer-policy", account=ACCOUNT),
        account=moto_account(aws, ACCOUNT, REGION),
    )
    enforcer.install(aws)
    return enforcer


def test_the_deployer_policy_is_enough_for_every_deploy_step(
    aws: Any, deployer: Enforcer, prebuilt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_creates_boundary()
    target = lambda_target(aws)
    where = LambdaOptions(region=REGION)
    key = DeploySpec(name="math-rewards", sources=(QUICKSTART,), options=where)
    target.deploy(key, zip_artifacts(prebuilt), Steps())
    target.deploy(key, zip_artifacts(prebuilt), Steps())  # update in place
    iam = LambdaOptions(
        region=REGION, rotate_key=True, invokers=(f"arn:aws:iam::{ACCOUNT}:role/t",)
    )
    iam_spec = DeploySpec(name="math-rewards", sources=(QUICKSTART,), auth="aws-iam", options=iam)
    target.deploy(iam_spec, zip_artifacts(prebuilt), Steps())
    monkeypatch.setattr(_bundle, "ZIPPED_LIMIT", 10)  # through S3
    target.deploy(key, zip_artifacts(prebuilt), Steps())
    target.status("math-rewards", where)
    target.delete("math-rewards", where, Steps())
    target.delete("math-rewards", where, Steps())  # already gone: still allowed

    assert deployer.actions(verdict=False) == set()
    checked = deployer.actions(verdict=True)
    # Not vacuous: the conditioned permissions were all evaluated and passed.
    assert {"iam:PassRole", "iam:CreateRole", "iam:AttachRolePolicy", "iam:PutRolePolicy",
            "lambda:CreateFunction", "s3:GetObject"} <= checked  # fmt: skip
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/reward-kit/rk-math-rewards-lambda"
    assert any(r.action == "iam:PassRole" and r.resource == role_arn for r, _ in deployer.decisions)


def test_without_the_boundary_the_deployer_stops_and_names_the_admin_step(
    aws: Any, deployer: Enforcer, prebuilt: Path
) -> None:
    spec = DeploySpec(
        name="math-rewards", sources=(QUICKSTART,), options=LambdaOptions(region=REGION)
    )
    with pytest.raises(DeployError, match=r"aws iam create-policy --path /reward-kit/"):
        lambda_target(aws).deploy(spec, zip_artifacts(prebuilt), Steps())
    assert boto3.session.Session(region_name=REGION).client("iam").list_roles()["Roles"] == []
    assert "iam:CreatePolicy" in deployer.actions(verdict=False)


def escalations(client: Any) -> list[tuple[str, Any]]:
    """Privilege escalations a deployer could try with boto3, each a thunk."""
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    iam, lam = client("iam"), client("lambda")
    everything = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    )
    zipped = {"ZipFile": b"PK\x05\x06" + b"\x00" * 18}
    return [
        ("CreateRole without the boundary", lambda: iam.create_role(
            RoleName="rk-evil", Path="/reward-kit/", AssumeRolePolicyDocument=trust)),
        ("CreateRole with another boundary", lambda: iam.create_role(
            RoleName="rk-evil", Path="/reward-kit/", AssumeRolePolicyDocument=trust,
            PermissionsBoundary=ADMIN)),
        ("CreateRole outside /reward-kit/", lambda: iam.create_role(
            RoleName="rk-evil", AssumeRolePolicyDocument=trust, PermissionsBoundary=BOUNDARY)),
        ("AttachRolePolicy AdministratorAccess", lambda: iam.attach_role_policy(
            RoleName="rk-victim-lambda", PolicyArn=ADMIN)),
        ("PutRolePolicy on an unbounded rk- role", lambda: iam.put_role_policy(
            RoleName="rk-unbounded", PolicyName="all", PolicyDocument=everything)),
        ("AttachRolePolicy on an unbounded rk- role", lambda: iam.attach_role_policy(
            RoleName="rk-unbounded", PolicyArn=BASIC)),
        ("remove the boundary", lambda: iam.delete_role_permissions_boundary(
            RoleName="rk-victim-lambda")),
        ("swap the boundary", lambda: iam.put_role_permissions_boundary(
            RoleName="rk-victim-lambda", PermissionsBoundary=ADMIN)),
        ("loosen the boundary", lambda: iam.create_policy_version(
            PolicyArn=BOUNDARY, PolicyDocument=everything, SetAsDefault=True)),
        ("new managed policy", lambda: iam.create_policy(
            PolicyName="rk-everything", PolicyDocument=everything)),
        ("trust EC2 instead", lambda: iam.update_assume_role_policy(
            RoleName="rk-victim-lambda", PolicyDocument=trust)),
        ("pass an admin role to Lambda", lambda: lam.create_function(
            FunctionName="rk-evil", Role=f"arn:aws:iam::{ACCOUNT}:role/rk-unbounded",
            Runtime="python3.11", Handler="x.h", Code=zipped)),
        ("new code in someone else's function", lambda: lam.update_function_code(
            FunctionName="payments", **zipped)),
        ("someone else's function runs as our role", lambda: lam.update_function_configuration(
            FunctionName="payments", Role=f"arn:aws:iam::{ACCOUNT}:role/reward-kit/x")),
    ]  # fmt: skip


def test_escalation_attempts_are_denied(aws: Any, deployer: Enforcer) -> None:
    admin_creates_boundary()
    for what, attempt in escalations(aws.client):
        with pytest.raises(aws.client("iam").exceptions.ClientError, match="AccessDenied") as err:
            attempt()
        assert "not authorized" in str(err.value), what
    # And what PassRole gates without an API of its own: passing our role to another service.
    ours = f"arn:aws:iam::{ACCOUNT}:role/reward-kit/rk-math-rewards-lambda"
    policy = policy_document("aws-deployer-policy", account=ACCOUNT)
    for service in ("ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "glue.amazonaws.com"):
        assert not allowed(Request("iam:PassRole", ours, {"iam:PassedToService": service}), policy)
    assert not allowed(Request("iam:PassRole", ours), policy)  # no service named: no
    # The deployer never reads an API key (only its hash is stored, and only the role reads it).
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:reward-kit/math-rewards/api-key-Ab"
    assert not allowed(Request("secretsmanager:GetSecretValue", secret), policy)


def test_the_old_policy_allowed_those_escalations() -> None:
    # The evaluator is not vacuous: the pre-fix policy lets the same requests through.
    role = f"arn:aws:iam::{ACCOUNT}:role/rk-victim-lambda"
    assert allowed(Request("iam:AttachRolePolicy", role, {"iam:PolicyARN": ADMIN}), OLD_POLICY)
    assert allowed(Request("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/rk-evil"), OLD_POLICY)
    assert allowed(Request("iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"}),
                   OLD_POLICY)  # fmt: skip
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments"
    assert allowed(Request("lambda:UpdateFunctionCode", fn), OLD_POLICY)


def test_the_boundary_caps_whatever_a_role_is_given() -> None:
    # A role someone gave "*" (an inline policy) can still only log and read key secrets.
    everything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    boundary = policy_document("aws-lambda-boundary", account=ACCOUNT)
    denied = [
        Request("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x"),
        Request("s3:GetObject", "arn:aws:s3:::company-data/x"),
        Request("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments"),
        Request("secretsmanager:GetSecretValue",
                f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db-Ab12Cd"),
        Request("logs:PutLogEvents",
                f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/payments:log-stream:x"),
    ]  # fmt: skip
    for request in denied:
        assert not allowed(request, everything, boundary), request
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/rk-math-rewards:log-stream:x"
    assert allowed(Request("logs:PutLogEvents", logs), everything, boundary)


# -- the GCP deployer role covers a deploy and holds nothing to escalate with --------------

# Which permission Google checks for each REST call the deployer makes (Google's IAM docs).
GCP_PERMISSIONS = [
    ("GET", r"/v1/projects/[^/]+/locations/[^/]+/repositories/[^/]+$",
     "artifactregistry.repositories.get"),
    ("POST", r"/v1/projects/[^/]+/locations/[^/]+/repositories$",
     "artifactregistry.repositories.create"),
    ("GET", r"/v1/projects/[^/]+/locations/[^/]+/operations/", "artifactregistry.repositories.get"),
    ("GET", r"/storage/v1/b/[^/]+$", "storage.buckets.get"),
    ("POST", r"/storage/v1/b$", "storage.buckets.create"),
    ("POST", r"/upload/storage/v1/b/[^/]+/o$", "storage.objects.create"),
    ("POST", r"/v1/projects/[^/]+/builds$", "cloudbuild.builds.create"),
    ("GET", r"/v1/operations/build/", "cloudbuild.builds.get"),
    ("GET", r"/v1/projects/[^/]+/secrets/[^/:]+:getIamPolicy$",
     "secretmanager.secrets.getIamPolicy"),
    ("POST", r"/v1/projects/[^/]+/secrets/[^/:]+:setIamPolicy$",
     "secretmanager.secrets.setIamPolicy"),
    ("POST", r"/v1/projects/[^/]+/secrets/[^/:]+:addVersion$", "secretmanager.versions.add"),
    ("GET", r"/v1/projects/[^/]+/secrets/[^/:]+/versions/latest$", "secretmanager.versions.get"),
    ("GET", r"/v1/projects/[^/]+/secrets/[^/:]+$", "secretmanager.secrets.get"),
    ("POST", r"/v1/projects/[^/]+/secrets$", "secretmanager.secrets.create"),
    ("DELETE", r"/v1/projects/[^/]+/secrets/[^/:]+$", "secretmanager.secrets.delete"),
    ("GET", r"/v2/.+/services/[^/:]+:getIamPolicy$", "run.services.getIamPolicy"),
    ("POST", r"/v2/.+/services/[^/:]+:setIamPolicy$", "run.services.setIamPolicy"),
    ("GET", r"/v2/.+/services/[^/:]+$", "run.services.get"),
    ("POST", r"/v2/.+/services$", "run.services.create"),
    ("PATCH", r"/v2/.+/services/[^/:]+$", "run.services.update"),
    ("DELETE", r"/v2/.+/services/[^/:]+$", "run.services.delete"),
    ("GET", r"/v2/.+/operations/", "run.operations.get"),
    ("GET", r"/v1/projects/[^/]+/serviceAccounts/[^/]+$", "iam.serviceAccounts.get"),
    ("POST", r"/v1/projects/[^/]+/serviceAccounts$", "iam.serviceAccounts.create"),
]  # fmt: skip
# Any of these would let the deployer act as, or grant itself, more than it has.
ESCALATING = {
    "iam.serviceAccounts.actAs", "iam.serviceAccounts.setIamPolicy",
    "iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt", "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.getOpenIdToken", "iam.serviceAccountKeys.create",
    "iam.roles.create", "iam.roles.update", "resourcemanager.projects.setIamPolicy",
    "secretmanager.versions.access", "storage.buckets.setIamPolicy", "run.jobs.create",
    "cloudfunctions.functions.create", "compute.instances.create", "cloudbuild.builds.update",
    # Unconditioned, these open any service or secret of the project (rkDeployerIam holds
    # them, bound with a condition naming one service and its secret).
    "run.services.setIamPolicy", "secretmanager.secrets.setIamPolicy",
}  # fmt: skip


def permission_of(method: str, path: str) -> str:
    for route_method, pattern, permission in GCP_PERMISSIONS:
        if route_method == method and re.search(pattern, path):
            return permission
    raise AssertionError(f"no permission known for {method} {path}")


def test_the_gcp_deployer_role_covers_a_deploy_and_nothing_escalates(
    google_fake: GoogleFake, tmp_path: Path
) -> None:
    # The narrow deployer: an administrator made the runtime account once.
    google_fake.service_accounts[RUNTIME_SA] = {"email": RUNTIME_SA}
    role = policy_document("gcp-deployer-role")
    conditioned = set(policy_document("gcp-deployer-iam-role")["includedPermissions"])
    assert conditioned == {"run.services.setIamPolicy", "secretmanager.secrets.setIamPolicy"}
    unconditioned = set(role["includedPermissions"])
    granted = unconditioned | conditioned
    target = cloud_run(google_fake)
    target.deploy(gcp_spec(), docker_artifacts(tmp_path), Steps())
    target.deploy(gcp_spec("google-iam", invokers=[f"user:me@{PROJECT}.example"]),
                  docker_artifacts(tmp_path), Steps())  # fmt: skip
    target.status("math-rewards", CloudRunOptions(project=PROJECT))
    target.delete("math-rewards", CloudRunOptions(project=PROJECT), Steps())
    used = {permission_of(c.method, c.path) for c in google_fake.calls}
    assert used <= granted, used - granted
    assert {"run.services.setIamPolicy", "iam.serviceAccounts.get"} <= used
    # Act-as is needed on the runtime account only, and comes from a grant on that account.
    runs_as = {
        c.body["template"]["serviceAccount"]
        for c in google_fake.calls
        if c.method in ("POST", "PATCH") and re.search(r"/services(/[^/:]+)?$", c.path)
    }
    assert runs_as == {RUNTIME_SA}
    assert not unconditioned & ESCALATING
    # The conditioned role is bound in the docs only with a condition on the resource name.
    docs = (ROOT / "docs" / "deploy.md").read_text()
    binding = docs[docs.index("roles/rkDeployerIam") :].split("\n$", 1)[0]
    assert "--condition=" in binding
    assert 'endsWith("/services/math-rewards")' in binding
    assert all(re.fullmatch(r"[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+", p) for p in granted)  # no wildcard


# -- docs/deploy.md shows exactly the shipped files ----------------------------------------


def test_docs_show_the_shipped_policies() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    for name in POLICY_NAMES:
        assert json.loads(policy_text(name)) in blocks, f"docs/deploy.md lacks {name}.json"
