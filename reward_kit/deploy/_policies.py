"""The IAM documents rk deploy ships, in ``reward_kit/deploy/policies/``.

``aws-deployer-policy.json`` (what the identity running ``rk deploy --target aws-lambda``
needs), ``aws-lambda-boundary.json`` (the permissions boundary of every execution role it
makes) ``gcp-deployer-role.json`` and ``gcp-deployer-iam-role.json`` (custom roles for ``--target
gcp-cloud-run``; the second is bound with a condition naming one service and its secret).
docs/deploy.md shows these same files and the tests evaluate them, so the three cannot drift.

    >>> policy_document("aws-lambda-boundary", account="123456789012")["Statement"][1]["Resource"]
    'arn:aws:secretsmanager:*:123456789012:secret:reward-kit/*'
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["ACCOUNT_PLACEHOLDER", "POLICY_NAMES", "policy_document", "policy_text"]

ACCOUNT_PLACEHOLDER = "ACCOUNT_ID"
POLICY_NAMES = (
    "aws-deployer-policy",
    "aws-lambda-boundary",
    "gcp-deployer-role",
    "gcp-deployer-iam-role",
)


def policy_text(name: str) -> str:
    """The file's text as shipped (with the ``ACCOUNT_ID`` placeholder)."""
    if name not in POLICY_NAMES:
        raise KeyError(f"no policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")
    folder = resources.files("reward_kit.deploy").joinpath("policies")
    return folder.joinpath(f"{name}.json").read_text()


def policy_document(name: str, *, account: str | None = None) -> dict[str, Any]:
    """The parsed document, with ``account`` in place of the placeholder when given."""
    text = policy_text(name)
    if account is not None:
        text = text.replace(ACCOUNT_PLACEHOLDER, account)
    document: dict[str, Any] = json.loads(text)
    return document
