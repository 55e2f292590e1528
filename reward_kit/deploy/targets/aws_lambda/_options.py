"""aws-lambda's options: what ``--region``, ``-o KEY=VALUE`` and ``[deploy.aws-lambda]`` say.

>>> LambdaOptions(region="eu-west-1", reserved_concurrency="none").reserved_concurrency
>>> LambdaOptions(memory=64)
Traceback (most recent call last):
reward_kit._errors.ConfigurationError: aws-lambda: memory must be an integer 128-10240, got 64
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from ..._options import BuildOptions, Expect, Strings, TargetOptions

__all__ = ["DEFAULT_RESERVED_CONCURRENCY", "LambdaOptions"]

# Concurrent executions reserved (and capped) by default: a public URL's traffic, or a runaway
# trainer, cannot scale the bill or starve the account's other functions past this.
DEFAULT_RESERVED_CONCURRENCY = 10
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
_PRINCIPAL = re.compile(r"^(\d{12}|arn:aws[a-z-]*:(iam|sts)::\d{12}:\S+)$")
_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/\S+$")


def _region(value: str | None) -> str | None:
    if value is not None and not _REGION.match(value):
        raise ValueError(f"{value!r} is not a region like us-east-1")
    return value


def _principals(value: tuple[str, ...]) -> tuple[str, ...]:
    for principal in value:
        if not _PRINCIPAL.match(principal):
            raise ValueError(
                f"invoker {principal!r} must be an account ID or an IAM ARN "
                "(arn:aws:iam::123456789012:role/trainer)"
            )
    return value


def _boundary(value: str | None) -> str | None:
    if value is not None and not _POLICY_ARN.match(value):
        raise ValueError(f"permissions_boundary {value!r} is not an IAM policy ARN")
    return value


def _none_word(value: Any) -> Any:
    # --reserved-concurrency none, -o reserved_concurrency=none, reserved-concurrency = "none".
    return None if isinstance(value, str) and value.strip().lower() == "none" else value


class LambdaOptions(TargetOptions):
    """aws-lambda options; all have defaults. ``region`` falls back to ``$AWS_REGION``,
    ``$AWS_DEFAULT_REGION``, then the AWS profile's region.

    ``aws_allowed_arns`` are the caller ARN patterns the server accepts with aws-iam (default:
    derived from ``invokers``); ``role_arn`` names an execution role to use instead of making
    one; ``permissions_boundary`` the boundary of the role made.
    """

    target: ClassVar[str] = "aws-lambda"
    environment: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "region": ("AWS_REGION", "AWS_DEFAULT_REGION")
    }

    architecture: Literal["x86_64", "arm64"] = "x86_64"
    region: Annotated[str | None, AfterValidator(_region)] = None
    memory: Annotated[int, Field(ge=128, le=10240)] = 1024
    timeout: Annotated[int, Field(ge=1, le=900)] = 60
    reserved_concurrency: Annotated[
        Annotated[int, Field(ge=0, le=100000)] | None,
        BeforeValidator(_none_word),
        Expect("an integer 0-100000 or none"),
    ] = DEFAULT_RESERVED_CONCURRENCY
    invokers: Annotated[Strings, AfterValidator(_principals)] = ()
    aws_allowed_arns: Strings = ()
    s3_bucket: str | None = None
    role_arn: str | None = None
    permissions_boundary: Annotated[str | None, AfterValidator(_boundary)] = None
    rotate_key: bool = False

    def build_options(self) -> BuildOptions:
        return BuildOptions(
            include=self.include, sandbox=self.sandbox, architecture=self.architecture
        )
