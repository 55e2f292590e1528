"""Calling AWS: every botocore error becomes a DeployError that repeats AWS's own answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ...._extras import require
from ...._retry import backoff_delay
from ..._errors import DeployError

__all__ = ["aws_api", "error_code", "missing", "retry_new_role"]

T = TypeVar("T")
# The codes AWS answers for "there is no such thing" (Lambda and Secrets Manager; IAM).
_MISSING = ("ResourceNotFoundException", "NoSuchEntity")


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


def missing(error: DeployError) -> bool:
    """Whether AWS answered that the thing asked for does not exist."""
    return error_code(error) in _MISSING


def retry_new_role(call: Callable[[], T], *, attempts: int = 10, delay: float = 3.0) -> T:
    """Run ``call``; a role created seconds ago may not be assumable yet, so retry that case,
    with backoff from ``delay`` up to 4x it (reward_kit._retry)."""
    for attempt in range(attempts):
        try:
            return call()
        except DeployError as error:
            message = str(error)
            if attempt + 1 == attempts or "cannot be assumed by Lambda" not in message:
                raise
            time.sleep(backoff_delay(attempt, base=delay, maximum=4 * delay))
    raise AssertionError("unreachable")
