"""What the cloud targets share: their error, the SDK snippet, the API key and plan.json."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._errors import RewardKitError
from ._target import PlannedCall

__all__ = [
    "REDACTED",
    "DeployError",
    "new_api_key",
    "redact",
    "sdk_snippet",
    "write_plan",
]

REDACTED = "<redacted>"
# Request fields that carry key material (or its hash) anywhere in a planned call.
_SECRET_FIELDS = frozenset(
    {"data", "payload", "secretstring", "secretbinary", "zipfile", "api_key", "key"}
)


class DeployError(RewardKitError):
    """A cloud API refused or failed a deploy step; the message carries its answer verbatim."""

    code = "deploy_error"


def new_api_key() -> tuple[str, str]:
    """A fresh client key and the server's ``deploy sha256:HEX`` line for it.

    Only the line (a hash) ever leaves this machine; the key is shown to the user once.

    >>> key, line = new_api_key()
    >>> line.startswith("deploy sha256:") and key.startswith("rk_")
    True
    """
    key = "rk_" + secrets.token_urlsafe(32)
    return key, "deploy sha256:" + hashlib.sha256(key.encode()).hexdigest()


def sdk_snippet(
    url: str, auth: str, *, region: str | None = None, max_batch_bytes: int | None = None
) -> str:
    """Ready-to-paste Python that calls the evaluator at ``url`` with the right credential.

    >>> print(sdk_snippet("https://x.run.app", "google-iam").splitlines()[0])
    from reward_kit.sdk import EvaluatorClient, GoogleIdToken
    """
    imports, arguments = ["EvaluatorClient"], [json.dumps(url)]
    if auth == "api-key":
        imports.append("ApiKey")
        arguments.append('auth=ApiKey(os.environ["RK_API_KEY"])')
    elif auth == "google-iam":
        # GoogleIdToken's default audience is the URL's origin, which is what Cloud Run checks.
        imports.append("GoogleIdToken")
        arguments.append("auth=GoogleIdToken()")
    elif auth == "aws-iam":
        imports.append("AwsSigV4")
        arguments.append(f"auth=AwsSigV4(region={json.dumps(region or 'us-east-1')})")
    if max_batch_bytes is not None:
        arguments.append(f"max_batch_bytes={max_batch_bytes:_}")
    head = "import os\n" if auth == "api-key" else ""
    head += f"from reward_kit.sdk import {', '.join(sorted(imports))}\n\n"
    call = "".join(f"    {argument},\n" for argument in arguments)
    return f"{head}with EvaluatorClient(\n{call}) as client:\n    print(client.functions())\n"


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-bearing field replaced by ``<redacted>``.

    >>> redact({"secret_id": "s", "payload": {"data": "deploy sha256:00"}})
    {'secret_id': 's', 'payload': '<redacted>'}
    """
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower().replace("_", "") in _SECRET_FIELDS else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, bytes):
        return REDACTED
    return value


def write_plan(out: Path, target: str, calls: Sequence[PlannedCall]) -> Path:
    """Write ``plan.json`` (redacted) into ``out`` and return its path."""
    path = out / "plan.json"
    document = {"target": target, "calls": [redact(asdict(call)) for call in calls]}
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    return path
