"""The API key's secret in Secrets Manager, readable by the function's own role only.

The secret holds the server's ``deploy sha256:HEX`` line; the key is shown to the user once.
"""

from __future__ import annotations

from typing import Any

from ..._api_key import new_api_key
from ..._errors import DeployError
from ..._spec import Reporter
from ._api import aws_api, missing
from ._function import LambdaFunction

__all__ = ["ensure_key_secret"]


def ensure_key_secret(sm: Any, fn: LambdaFunction, reporter: Reporter) -> tuple[str | None, str]:
    """Create or reuse the key's secret; returns (new key or None, secret ARN).

    A new key is made on the first deploy and with ``rotate_key``; otherwise the stored one
    is kept, so existing clients keep working.
    """
    try:
        with aws_api("secretsmanager", "DescribeSecret"):
            arn = str(sm.describe_secret(SecretId=fn.secret_name)["ARN"])
    except DeployError as error:
        if not missing(error):
            raise
        return _create(sm, fn, reporter)
    if not fn.options.rotate_key:
        reporter.step(f"keeping the API key in {fn.secret_name} (--rotate-key makes a new one)")
        return None, arn
    key, line = new_api_key()
    reporter.step(f"rotating the API key in {fn.secret_name}")
    with aws_api("secretsmanager", "PutSecretValue"):
        sm.put_secret_value(SecretId=arn, SecretString=line)
    return key, arn


def _create(sm: Any, fn: LambdaFunction, reporter: Reporter) -> tuple[str, str]:
    key, line = new_api_key()
    reporter.step(f"creating secret {fn.secret_name}")
    with aws_api("secretsmanager", "CreateSecret"):
        answer = sm.create_secret(
            Name=fn.secret_name,
            SecretString=line,
            Description=f"reward-kit API key hash for {fn.name}",
            Tags=[{"Key": "managed-by", "Value": "reward-kit"}],
        )
    return key, str(answer["ARN"])
