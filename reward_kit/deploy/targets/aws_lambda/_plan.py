"""What an aws-lambda deploy would call, for ``--dry-run``'s plan.json."""

from __future__ import annotations

from ..._spec import Artifacts, DeploySpec, PlannedCall
from ._function import LambdaFunction
from ._role import ROLE_PATH, boundary_arn
from ._url import url_auth_type, url_statements

__all__ = ["plan_calls"]


def plan_calls(
    spec: DeploySpec, fn: LambdaFunction, artifacts: Artifacts, *, size: int, via_s3: bool
) -> list[PlannedCall]:
    """The calls in order: key secret, execution role, function, URL, concurrency, permissions."""
    secret = f"<ARN of {fn.secret_name}>" if spec.auth == "api-key" else None
    calls: list[PlannedCall] = []
    if secret:
        calls.append(
            PlannedCall(
                service="secretsmanager",
                method="DescribeSecret/CreateSecret",
                summary=f"store the API key's hash in {fn.secret_name}",
                request={"Name": fn.secret_name, "SecretString": "<new key hash>"},
            )
        )
    if fn.options.role_arn is None:
        calls.append(_role_call(fn, secret))
    code = (
        {"S3Bucket": fn.options.s3_bucket or "reward-kit-ACCOUNT-REGION", "S3Key": "..."}
        if via_s3
        else {"ZipFile": f"<{size} bytes>"}
    )
    settings = fn.settings(spec.auth, artifacts, f"<{fn.role_name}>", secret)
    reserved = fn.options.reserved_concurrency
    calls += [
        PlannedCall(
            service="lambda",
            method="GetFunction/CreateFunction|UpdateFunctionCode+UpdateFunctionConfiguration",
            summary=f"create or update function {fn.function_name} ({size} bytes zipped)",
            request={**settings, "Code": code, "Architectures": [fn.architecture(artifacts)]},
        ),
        PlannedCall(
            service="lambda",
            method="CreateFunctionUrlConfig|UpdateFunctionUrlConfig",
            summary="function URL",
            request={"AuthType": url_auth_type(spec.auth)},
        ),
        PlannedCall(
            service="lambda",
            method="PutFunctionConcurrency|DeleteFunctionConcurrency",
            summary=f"reserved concurrency {reserved}",
            request={"ReservedConcurrentExecutions": reserved},
        ),
    ]
    return calls + [
        PlannedCall(service="lambda", method="AddPermission", summary=sid, request=statement)
        for sid, statement in url_statements(spec.auth, fn).items()
    ]


def _role_call(fn: LambdaFunction, secret: str | None) -> PlannedCall:
    boundary = fn.options.permissions_boundary or boundary_arn("<ACCOUNT>")
    return PlannedCall(
        service="iam",
        method="GetRole/CreateRole+AttachRolePolicy+PutRolePolicy",
        summary=f"execution role {ROLE_PATH}{fn.role_name} bounded by {boundary}: logs, and "
        f"read {secret or 'nothing'}",
        request={
            "RoleName": fn.role_name,
            "Path": ROLE_PATH,
            "PermissionsBoundary": boundary,
            "PolicyArn": "AWSLambdaBasicExecutionRole",
        },
    )
