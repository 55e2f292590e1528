"""The Lambda execution role: dedicated, under ``/reward-kit/``, fenced by a permissions boundary.

A role made by ``rk deploy`` may be assumed by Lambda only, carries the managed
``AWSLambdaBasicExecutionRole`` (logs) and an inline read of its own key secret, and has the
boundary ``reward-kit-lambda-boundary`` (logs of ``rk-*`` functions and ``reward-kit/*``
secrets, nothing else). The boundary is what makes a narrow deployer policy safe: whatever
inline policy someone with that policy puts on a role, the role can do no more than the
boundary allows (docs/deploy.md, "IAM needed").
"""

from __future__ import annotations

import json
from typing import Any

from ..._errors import DeployError
from ..._policies import policy_document
from ..._spec import Reporter
from ._api import aws_api, error_code
from ._function import LambdaFunction

__all__ = [
    "BASIC_EXECUTION",
    "BOUNDARY_NAME",
    "ROLE_PATH",
    "TRUST_POLICY",
    "boundary_arn",
    "delete_role",
    "ensure_boundary",
    "ensure_role",
]

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ROLE_PATH = "/reward-kit/"
BOUNDARY_NAME = "reward-kit-lambda-boundary"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
SECRET_POLICY_NAME = "reward-kit-read-api-key"


def boundary_arn(account: str, partition: str = "aws") -> str:
    """The default boundary's ARN in ``account``.

    >>> boundary_arn("123456789012")
    'arn:aws:iam::123456789012:policy/reward-kit/reward-kit-lambda-boundary'
    """
    return f"arn:{partition}:iam::{account}:policy{ROLE_PATH}{BOUNDARY_NAME}"


def ensure_boundary(iam: Any, arn: str, account: str, reporter: Reporter) -> None:
    """Make sure the boundary policy exists; create the default one if this identity may."""
    try:
        with aws_api("iam", "GetPolicy"):
            iam.get_policy(PolicyArn=arn)
        return
    except DeployError as error:
        if error_code(error) != "NoSuchEntity":
            raise
    if arn != boundary_arn(account, arn.split(":")[1]):
        raise DeployError(
            f"the permissions boundary {arn} does not exist; create it, or leave "
            "permissions_boundary unset to use reward-kit's own"
        )
    reporter.step(f"creating the permissions boundary {arn}")
    document = policy_document("aws-lambda-boundary", account=account)
    try:
        with aws_api("iam", "CreatePolicy"):
            iam.create_policy(
                PolicyName=BOUNDARY_NAME,
                Path=ROLE_PATH,
                PolicyDocument=json.dumps(document),
                Description="reward-kit: the most any evaluator's execution role may do",
            )
    except DeployError as error:
        if error_code(error) not in ("AccessDenied", "AccessDeniedException"):
            raise
        raise DeployError(
            f"the permissions boundary {arn} does not exist and this identity may not create it "
            "(the deployer policy rightly does not allow iam:CreatePolicy). An administrator "
            f"creates it once: aws iam create-policy --path {ROLE_PATH} --policy-name "
            f"{BOUNDARY_NAME} --policy-document file://aws-lambda-boundary.json (the file is in "
            f"reward_kit/deploy/policies/; put your account ID in it). AWS said: {error}"
        ) from error


def ensure_role(
    iam: Any, fn: LambdaFunction, boundary: str, secret_arn: str | None, reporter: Reporter
) -> str:
    """The execution role's ARN, created when missing; an existing one must be fenced."""
    try:
        with aws_api("iam", "GetRole"):
            role = iam.get_role(RoleName=fn.role_name)["Role"]
    except DeployError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        role = _create_role(iam, fn, boundary, reporter)
    _refuse_unfenced(role, boundary)
    with aws_api("iam", "AttachRolePolicy"):
        iam.attach_role_policy(RoleName=fn.role_name, PolicyArn=BASIC_EXECUTION)
    if secret_arn:
        _allow_secret(iam, fn.role_name, secret_arn)
    return str(role["Arn"])


def _create_role(iam: Any, fn: LambdaFunction, boundary: str, reporter: Reporter) -> Any:
    reporter.step(f"creating execution role {ROLE_PATH}{fn.role_name} (bounded)")
    with aws_api("iam", "CreateRole"):
        role = iam.create_role(
            RoleName=fn.role_name,
            Path=ROLE_PATH,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            PermissionsBoundary=boundary,
            Description=f"reward-kit evaluator {fn.name}",
            Tags=[{"Key": "managed-by", "Value": "reward-kit"}],
        )["Role"]
        iam.get_waiter("role_exists").wait(RoleName=fn.role_name)
    return role


def _allow_secret(iam: Any, role_name: str, secret_arn: str) -> None:
    """The role's one inline permission: read its own key secret."""
    statement = {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": secret_arn,
    }
    document = {"Version": "2012-10-17", "Statement": [statement]}
    with aws_api("iam", "PutRolePolicy"):
        iam.put_role_policy(
            RoleName=role_name, PolicyName=SECRET_POLICY_NAME, PolicyDocument=json.dumps(document)
        )


def _refuse_unfenced(role: dict[str, Any], boundary: str) -> None:
    """A role of that name made some other way (or by an older rk deploy) is never reused."""
    has = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if role.get("Path") != ROLE_PATH or has != boundary:
        raise DeployError(
            f"the role {role.get('RoleName')} exists at path {role.get('Path')} with permissions "
            f"boundary {has or 'none'}, not at {ROLE_PATH} with {boundary}: rk deploy does not "
            "pass a role it cannot vouch for to Lambda. Delete it (rk deploy delete NAME "
            "--target aws-lambda, or aws iam delete-role) or name your own with -o role_arn=ARN"
        )


def delete_role(iam: Any, role_name: str) -> None:
    """Detach and delete every policy of the role, then the role.

    Looked up first: a role that is gone answers NoSuchEntity here, whatever its path was.
    """
    iam.get_role(RoleName=role_name)
    for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
    attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    for policy in attached:
        iam.detach_role_policy(RoleName=role_name, PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName=role_name)
