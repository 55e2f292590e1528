"""aws-lambda pieces: validated options, the execution role, the key secret, URL permissions."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigurationError
from .._extras import require
from ._common import DeployError, new_api_key
from ._target import DeploySpec, Reporter

__all__ = [
    "BASIC_EXECUTION",
    "LambdaOptions",
    "aws_api",
    "ensure_key_secret",
    "ensure_role",
    "error_code",
    "url_statements",
]

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
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
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
_PRINCIPAL = re.compile(r"^(\d{12}|arn:aws[a-z-]*:(iam|sts)::\d{12}:\S+)$")


@contextmanager
def aws_api(service: str, method: str) -> Iterator[None]:
    """Turn a botocore error into a DeployError that repeats AWS's own answer."""
    # botocore ships no type information; its errors are matched by class all the same.
    exceptions: Any = require("botocore.exceptions", extra="aws-deploy", feature="aws-lambda")

    try:
        yield
    except (exceptions.ClientError, exceptions.BotoCoreError) as error:
        raise DeployError(f"{service} {method} failed: {error}") from error


def error_code(error: DeployError) -> str:
    """The AWS error code behind a DeployError from :func:`aws_api` ('' if none)."""
    response = getattr(error.__cause__, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _int(options: Mapping[str, Any], key: str, default: int | None, low: int, high: int) -> Any:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"aws-lambda: {key} must be an integer {low}-{high}, got {value!r}"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class LambdaOptions:
    """aws-lambda options with their defaults, validated before any AWS call.

    >>> spec = DeploySpec(name="rw", sources=("r.py",), options={"region": "eu-west-1"})
    >>> LambdaOptions.from_spec(spec, default_region=None).role_name
    'rk-rw-lambda'
    """

    name: str
    region: str
    memory: int = 1024
    timeout: int = 60
    reserved_concurrency: int | None = None
    invokers: tuple[str, ...] = ()
    allowed_arns: tuple[str, ...] = ()
    s3_bucket: str | None = None
    role_arn: str | None = None
    rotate_key: bool = False

    @classmethod
    def from_spec(cls, spec: DeploySpec, *, default_region: str | None) -> LambdaOptions:
        o = spec.options
        region = o.get("region") or default_region
        if not region:
            raise ConfigurationError(
                "aws-lambda needs a region: pass --region, set AWS_DEFAULT_REGION, or set region "
                "under [deploy.aws-lambda] in reward-kit.toml"
            )
        if not _REGION.match(str(region)):
            raise ConfigurationError(f"aws-lambda: {region!r} is not a region like us-east-1")
        if spec.auth in ("mtls", "google-iam"):
            raise ConfigurationError(
                f"aws-lambda does not support --auth {spec.auth}: function URLs terminate TLS and "
                "authenticate AWS identities; use api-key or aws-iam"
            )
        invokers = tuple(str(p) for p in o.get("invokers") or ())
        for principal in invokers:
            if not _PRINCIPAL.match(principal):
                raise ConfigurationError(
                    f"aws-lambda: invoker {principal!r} must be an account ID or an IAM ARN "
                    "(arn:aws:iam::123456789012:role/trainer)"
                )
        allowed = tuple(str(a) for a in o.get("aws_allowed_arns") or ()) or _allow_list(invokers)
        if spec.auth == "aws-iam" and not allowed:
            raise ConfigurationError(
                "aws-lambda --auth aws-iam needs --invoker ARN (or --aws-allow-arn PATTERN): "
                "the identities allowed to call the function URL"
            )
        return cls(
            name=spec.name,
            region=str(region),
            memory=_int(o, "memory", cls.memory, 128, 10240),
            timeout=_int(o, "timeout", cls.timeout, 1, 900),
            reserved_concurrency=_int(o, "reserved_concurrency", None, 0, 100000),
            invokers=invokers,
            allowed_arns=allowed,
            s3_bucket=o.get("s3_bucket") or None,
            role_arn=o.get("role_arn") or None,
            rotate_key=bool(o.get("rotate_key", False)),
        )

    @property
    def role_name(self) -> str:
        return f"rk-{self.name}-lambda"

    @property
    def secret_name(self) -> str:
        return f"reward-kit/{self.name}/api-key"

    def environment(self, auth: str, secret_arn: str | None) -> dict[str, str]:
        """The function's RK_* variables: the key only as a secret ARN, never its value."""
        env = {"RK_WORKERS": "0"}  # Lambda has no /dev/shm: no worker processes.
        if auth == "none":
            env["RK_ALLOW_UNAUTHENTICATED"] = "true"
            return env
        env["RK_AUTH"] = auth
        if auth == "api-key" and secret_arn:
            env["RK_API_KEY_SECRET_ARN"] = secret_arn
        if auth == "aws-iam":
            env["RK_AWS_ALLOWED_ARNS"] = ",".join(self.allowed_arns)
        return env


def _allow_list(invokers: tuple[str, ...]) -> tuple[str, ...]:
    """Server-side ARN patterns for the invokers: a role's callers arrive as assumed-role ARNs."""
    patterns: list[str] = []
    for principal in invokers:
        role = re.match(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$", principal)
        if principal.isdigit():
            patterns += [f"arn:aws:iam::{principal}:*", f"arn:aws:sts::{principal}:*"]
        elif role:
            patterns.append(f"arn:{role[1]}:sts::{role[2]}:assumed-role/{role[3]}/*")
        else:
            patterns.append(principal)
    return tuple(patterns)


def ensure_key_secret(
    sm: Any, options: LambdaOptions, reporter: Reporter
) -> tuple[str | None, str]:
    """Create or reuse the key's secret; returns (new key or None, secret ARN).

    The secret holds the server's ``deploy sha256:HEX`` line; the key is shown to the user once.
    """
    try:
        with aws_api("secretsmanager", "DescribeSecret"):
            arn = str(sm.describe_secret(SecretId=options.secret_name)["ARN"])
    except DeployError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        key, line = new_api_key()
        reporter.step(f"creating secret {options.secret_name}")
        with aws_api("secretsmanager", "CreateSecret"):
            arn = str(
                sm.create_secret(
                    Name=options.secret_name,
                    SecretString=line,
                    Description=f"reward-kit API key hash for {options.name}",
                    Tags=[{"Key": "managed-by", "Value": "reward-kit"}],
                )["ARN"]
            )
        return key, arn
    if not options.rotate_key:
        reporter.step(
            f"keeping the API key in {options.secret_name} (--rotate-key makes a new one)"
        )
        return None, arn
    key, line = new_api_key()
    reporter.step(f"rotating the API key in {options.secret_name}")
    with aws_api("secretsmanager", "PutSecretValue"):
        sm.put_secret_value(SecretId=arn, SecretString=line)
    return key, arn


def ensure_role(
    iam: Any, options: LambdaOptions, secret_arn: str | None, reporter: Reporter
) -> str:
    """The execution role: Lambda may assume it, it may log, and read its own secret only."""
    try:
        with aws_api("iam", "GetRole"):
            arn = str(iam.get_role(RoleName=options.role_name)["Role"]["Arn"])
    except DeployError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        reporter.step(f"creating execution role {options.role_name}")
        with aws_api("iam", "CreateRole"):
            arn = str(
                iam.create_role(
                    RoleName=options.role_name,
                    AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                    Description=f"reward-kit evaluator {options.name}",
                    Tags=[{"Key": "managed-by", "Value": "reward-kit"}],
                )["Role"]["Arn"]
            )
            iam.get_waiter("role_exists").wait(RoleName=options.role_name)
    with aws_api("iam", "AttachRolePolicy"):
        iam.attach_role_policy(RoleName=options.role_name, PolicyArn=BASIC_EXECUTION)
    if secret_arn:
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": secret_arn,
                }
            ],
        }
        with aws_api("iam", "PutRolePolicy"):
            iam.put_role_policy(
                RoleName=options.role_name,
                PolicyName=SECRET_POLICY_NAME,
                PolicyDocument=json.dumps(document),
            )
    return arn


def url_statements(auth: str, options: LambdaOptions) -> dict[str, dict[str, Any]]:
    """The function's resource-policy statements for its URL, by statement ID.

    Since October 2025 a function URL needs both ``lambda:InvokeFunctionUrl`` and
    ``lambda:InvokeFunction`` (the latter limited to calls that come through the URL).
    """
    if auth == "aws-iam":
        principals = {hashlib.sha256(p.encode()).hexdigest()[:10]: p for p in options.invokers}
        url_auth = "AWS_IAM"
    else:
        principals, url_auth = {"public": "*"}, "NONE"
    statements: dict[str, dict[str, Any]] = {}
    for tag, principal in principals.items():
        statements[f"rk-{tag}-url"] = {
            "Action": "lambda:InvokeFunctionUrl",
            "Principal": principal,
            "FunctionUrlAuthType": url_auth,
        }
        statements[f"rk-{tag}-invoke"] = {
            "Action": "lambda:InvokeFunction",
            "Principal": principal,
            "InvokedViaFunctionUrl": True,
        }
    return statements


def retry_new_role(call: Any, *, attempts: int = 10, delay: float = 3.0) -> Any:
    """Run ``call``; a role created seconds ago may not be assumable yet, so retry that case."""
    for attempt in range(attempts):
        try:
            return call()
        except DeployError as error:
            message = str(error)
            if attempt + 1 == attempts or "cannot be assumed by Lambda" not in message:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")
