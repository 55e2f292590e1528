"""The function URL and the resource-policy statements that say who may call it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..._errors import DeployError
from ..._spec import Reporter
from ._api import aws_api, missing
from ._function import LambdaFunction

__all__ = ["ensure_url", "url_auth_type", "url_statements"]


def url_auth_type(auth: str) -> str:
    return "AWS_IAM" if auth == "aws-iam" else "NONE"


def url_statements(auth: str, fn: LambdaFunction) -> dict[str, dict[str, Any]]:
    """The function's resource-policy statements for its URL, by statement ID.

    Since October 2025 a function URL needs both ``lambda:InvokeFunctionUrl`` and
    ``lambda:InvokeFunction`` (the latter limited to calls that come through the URL).
    """
    if auth == "aws-iam":
        invokers = fn.options.invokers
        principals = {hashlib.sha256(p.encode()).hexdigest()[:10]: p for p in invokers}
    else:
        principals = {"public": "*"}
    statements: dict[str, dict[str, Any]] = {}
    for tag, principal in principals.items():
        statements[f"rk-{tag}-url"] = {
            "Action": "lambda:InvokeFunctionUrl",
            "Principal": principal,
            "FunctionUrlAuthType": url_auth_type(auth),
        }
        statements[f"rk-{tag}-invoke"] = {
            "Action": "lambda:InvokeFunction",
            "Principal": principal,
            "InvokedViaFunctionUrl": True,
        }
    return statements


def ensure_url(lam: Any, auth: str, fn: LambdaFunction, reporter: Reporter) -> str:
    """Create or switch the function URL to ``auth``'s AuthType, then its permissions."""
    auth_type, name = url_auth_type(auth), fn.function_name
    try:
        with aws_api("lambda", "GetFunctionUrlConfig"):
            current = lam.get_function_url_config(FunctionName=name)
        if current["AuthType"] != auth_type:
            reporter.step(f"switching the function URL to AuthType {auth_type}")
            with aws_api("lambda", "UpdateFunctionUrlConfig"):
                current = lam.update_function_url_config(FunctionName=name, AuthType=auth_type)
    except DeployError as error:
        if not missing(error):
            raise
        reporter.step(f"creating the function URL (AuthType {auth_type})")
        with aws_api("lambda", "CreateFunctionUrlConfig"):
            current = lam.create_function_url_config(
                FunctionName=name, AuthType=auth_type, InvokeMode="BUFFERED"
            )
    _sync_permissions(lam, url_statements(auth, fn), name, reporter)
    return str(current["FunctionUrl"])


def _sync_permissions(
    lam: Any, wanted: dict[str, dict[str, Any]], name: str, reporter: Reporter
) -> None:
    present = _statement_ids(lam, name)
    for sid in sorted(present - wanted.keys()):
        if sid.startswith("rk-"):  # ours, from an earlier deploy with other auth/invokers
            reporter.step(f"removing permission {sid}")
            with aws_api("lambda", "RemovePermission"):
                lam.remove_permission(FunctionName=name, StatementId=sid)
    for sid, statement in wanted.items():
        if sid not in present:
            reporter.step(f"allowing {statement['Action']} for {statement['Principal']}")
            with aws_api("lambda", "AddPermission"):
                lam.add_permission(FunctionName=name, StatementId=sid, **statement)


def _statement_ids(lam: Any, name: str) -> set[str]:
    try:
        with aws_api("lambda", "GetPolicy"):
            policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    except DeployError as error:
        if not missing(error):
            raise
        return set()
    return {str(s.get("Sid")) for s in policy.get("Statement", [])}
