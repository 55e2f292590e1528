"""The Lambda function of one deploy: its names, settings and environment.

>>> fn = LambdaFunction(name="rw", options=LambdaOptions(), region="eu-west-1")
>>> fn.function_name, fn.role_name, fn.secret_name
('rk-rw', 'rk-rw-lambda', 'reward-kit/rw/api-key')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..._spec import Artifacts
from ...artifacts.lambda_handler import SECRET_ARN_VARIABLE
from ._options import LambdaOptions

__all__ = ["DEFAULT_HANDLER", "FUNCTION_PREFIX", "LambdaFunction"]

DEFAULT_HANDLER = "rk_lambda.handler"
# Function names carry this prefix, so the deployer policy can be scoped to rk-* functions.
FUNCTION_PREFIX = "rk-"
_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")


@dataclass(frozen=True, kw_only=True)
class LambdaFunction:
    """The options of one deploy, its region, and the names derived from them."""

    name: str
    options: LambdaOptions
    region: str

    @property
    def function_name(self) -> str:
        return f"{FUNCTION_PREFIX}{self.name}"

    @property
    def role_name(self) -> str:
        return f"rk-{self.name}-lambda"

    @property
    def secret_name(self) -> str:
        return f"reward-kit/{self.name}/api-key"

    @property
    def allowed_arns(self) -> tuple[str, ...]:
        """aws-iam: the caller ARN patterns the server accepts (given, or from the invokers)."""
        return self.options.aws_allowed_arns or _allow_list(self.options.invokers)

    def environment(self, auth: str, secret_arn: str | None) -> dict[str, str]:
        """The function's RK_* variables: the key only as a secret ARN, never its value."""
        env = {"RK_WORKERS": "0"}  # Lambda has no /dev/shm: no worker processes.
        if auth == "none":
            # Public by the operator's explicit choice: answer the function URL's Host too
            # (without auth, rk-serve answers only loopback Hosts, against DNS rebinding).
            env["RK_ALLOW_UNAUTHENTICATED"] = "true"
            env["RK_ALLOWED_HOSTS"] = "*"
            return env
        env["RK_AUTH"] = auth
        if auth == "api-key" and secret_arn:
            env[SECRET_ARN_VARIABLE] = secret_arn
        if auth == "aws-iam":
            env["RK_AWS_ALLOWED_ARNS"] = ",".join(self.allowed_arns)
        return env

    def settings(
        self, auth: str, artifacts: Artifacts, role: str, secret_arn: str | None
    ) -> dict[str, Any]:
        """CreateFunction's (and UpdateFunctionConfiguration's) parameters."""
        return {
            "FunctionName": self.function_name,
            "Role": role,
            "Runtime": artifacts.runtime or "python3.11",
            "Handler": artifacts.handler or DEFAULT_HANDLER,
            "Timeout": self.options.timeout,
            "MemorySize": self.options.memory,
            "Environment": {"Variables": self.environment(auth, secret_arn)},
        }

    def architecture(self, artifacts: Artifacts) -> str:
        # What the zip was built for (its manifest, with --from-build); else the option.
        return artifacts.architecture or self.options.architecture


def _allow_list(invokers: tuple[str, ...]) -> tuple[str, ...]:
    """Server-side ARN patterns for the invokers: a role's callers arrive as assumed-role ARNs.

    >>> _allow_list(("123456789012", "arn:aws:iam::123456789012:role/t"))[1:]
    ('arn:aws:sts::123456789012:*', 'arn:aws:sts::123456789012:assumed-role/t/*')
    """
    patterns: list[str] = []
    for principal in invokers:
        role = _ROLE_ARN.match(principal)
        if principal.isdigit():
            patterns += [f"arn:aws:iam::{principal}:*", f"arn:aws:sts::{principal}:*"]
        elif role:
            patterns.append(f"arn:{role[1]}:sts::{role[2]}:assumed-role/{role[3]}/*")
        else:
            patterns.append(principal)
    return tuple(patterns)
