"""A small IAM policy evaluator, and a boto3 hook that enforces a policy on calls to moto.

Why not moto's own enforcement: moto does not enforce IAM unless asked, and when asked
(``INITIAL_NO_AUTH_ACTION_COUNT``) it ignores most ``Condition`` keys (a conditioned Allow
becomes a Deny) and never checks ``iam:PassRole``. The deployer policy is all conditions and
PassRole, so the tests evaluate the policy JSON themselves, for exactly the calls rk deploy
makes (and the escalation attempts), the way AWS's "policy evaluation logic" documents it for a
single account:

* an explicit Deny wins; else any Allow; else the request is denied (implicitly);
* with a permissions boundary, the identity policy *and* the boundary must allow;
* ``Action``/``NotAction`` (case-insensitive) and ``Resource``/``NotResource`` match with the
  ``*`` and ``?`` wildcards;
* every condition operator of a statement must hold (AND), any value of a list may match
  (OR); a key missing from the request fails a positive operator and satisfies a negated one;
* ``StringEquals``, ``StringNotEquals``, ``StringLike``, ``StringNotLike``, ``ArnEquals``,
  ``ArnLike``, ``ArnNotEquals``, ``ArnNotLike``, ``Bool`` and ``Null`` are implemented; any
  other operator raises, so the evaluator never guesses.

:func:`requests_for` says which authorisation requests AWS makes for one API call (including
the implicit ``iam:PassRole`` of CreateFunction/UpdateFunctionConfiguration and the tag
permissions of tag-on-create); an API call it does not know raises, so a new call in the
deployer fails the tests until its permission is thought about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

PASSED_TO_LAMBDA = {"iam:PassedToService": "lambda.amazonaws.com"}


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def _match(pattern: str, value: str, *, case: bool) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _condition(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    values = _listed(expected)
    present = key in context
    actual = context.get(key, "")
    if operator == "Null":
        return (not present) == (values[0].lower() == "true")
    negated = "Not" in operator
    if not present:
        return negated
    if operator in ("StringEquals", "ArnEquals", "StringNotEquals", "ArnNotEquals"):
        hit = actual in values
    elif operator in ("StringLike", "ArnLike", "StringNotLike", "ArnNotLike"):
        hit = any(_match(v, actual, case=True) for v in values)
    elif operator == "Bool":
        hit = actual.lower() in (v.lower() for v in values)
    else:
        raise NotImplementedError(f"condition operator {operator} is not implemented")
    return not hit if negated else hit


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        action = any(_match(a, request.action, case=False) for a in _listed(statement["Action"]))
    else:
        action = not any(
            _match(a, request.action, case=False) for a in _listed(statement["NotAction"])
        )
    if "Resource" in statement:
        resource = any(
            _match(r, request.resource, case=True) for r in _listed(statement["Resource"])
        )
    else:
        resource = not any(
            _match(r, request.resource, case=True) for r in _listed(statement["NotResource"])
        )
    if not (action and resource):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition(operator, key, expected, request.context):
                return False
    return True


def decide(policy: Mapping[str, Any], request: Request) -> str:
    """``deny`` (explicit), ``allow``, or ``implicit`` (nothing allows it)."""
    statements = policy["Statement"]
    if isinstance(statements, Mapping):
        statements = [statements]
    applying = [s for s in statements if _applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return "deny"
    return "allow" if any(s["Effect"] == "Allow" for s in applying) else "implicit"


def allowed(
    request: Request, identity: Mapping[str, Any], boundary: Mapping[str, Any] | None = None
) -> bool:
    """Whether the identity policy (within ``boundary``, if any) allows ``request``."""
    if decide(identity, request) != "allow":
        return False
    return boundary is None or decide(boundary, request) == "allow"


# -- which requests an API call makes ---------------------------------------------------------

RoleLookup = Callable[[str], "tuple[str, str | None] | None"]  # name -> (path, boundary ARN)
SecretLookup = Callable[[str], "str | None"]  # name or ARN -> ARN


@dataclass(frozen=True)
class Account:
    id: str
    region: str
    role: RoleLookup
    secret: SecretLookup

    def role_arn(self, name: str, path: str | None = None) -> str:
        # A role that does not exist has no known path: AWS can only name it without one.
        if path is None:
            found = self.role(name)
            path = found[0] if found else "/"
        return f"arn:aws:iam::{self.id}:role{path}{name}"

    def function_arn(self, name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:aws:lambda:{self.region}:{self.id}:function:{name}"


def _role_requests(account: Account, action: str, params: Mapping[str, Any]) -> list[Request]:
    name = params["RoleName"]
    found = account.role(name)
    context: dict[str, str] = {}
    if found and found[1]:
        context["iam:PermissionsBoundary"] = found[1]
    if "PolicyArn" in params:
        context["iam:PolicyARN"] = params["PolicyArn"]
    if action == "iam:PutRolePermissionsBoundary":
        context["iam:PermissionsBoundary"] = params["PermissionsBoundary"]
    return [Request(action, account.role_arn(name), context)]


def requests_for(
    service: str, operation: str, params: Mapping[str, Any], account: Account
) -> list[Request]:
    """The authorisation requests AWS evaluates for one API call."""
    action = f"{service}:{operation}"
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # always allowed, whatever the policies say
    if service == "iam":
        if operation == "CreateRole":
            arn = account.role_arn(params["RoleName"], params.get("Path", "/"))
            context = {}
            if "PermissionsBoundary" in params:
                context["iam:PermissionsBoundary"] = params["PermissionsBoundary"]
            found = [Request(action, arn, context)]
            if params.get("Tags"):
                found.append(Request("iam:TagRole", arn, context))
            return found
        if "RoleName" in params:
            return _role_requests(account, action, params)
        if operation == "CreatePolicy":
            path = params.get("Path", "/")
            arn = f"arn:aws:iam::{account.id}:policy{path}{params['PolicyName']}"
            return [Request(action, arn)]
        if "PolicyArn" in params:
            return [Request(action, params["PolicyArn"])]
        if "UserName" in params:
            return [Request(action, f"arn:aws:iam::{account.id}:user/{params['UserName']}")]
    if service == "lambda":
        arn = account.function_arn(params["FunctionName"])
        found = [Request(action, arn)]
        if "Role" in params:  # CreateFunction, UpdateFunctionConfiguration
            found.append(Request("iam:PassRole", params["Role"], PASSED_TO_LAMBDA))
        if params.get("Tags"):
            found.append(Request("lambda:TagResource", arn))
        code = params.get("Code") or params
        if "S3Bucket" in code:
            object_arn = f"arn:aws:s3:::{code['S3Bucket']}/{code['S3Key']}"
            found.append(Request("s3:GetObject", object_arn))
        return found
    if service == "secretsmanager":
        name = params.get("SecretId") or params["Name"]
        arn = account.secret(name) or (
            name if name.startswith("arn:") else
            f"arn:aws:secretsmanager:{account.region}:{account.id}:secret:{name}-??????"
        )  # fmt: skip
        found = [Request(action, arn)]
        if params.get("Tags"):
            found.append(Request("secretsmanager:TagResource", arn))
        return found
    if service == "s3":
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        if operation == "HeadBucket":
            return [Request("s3:ListBucket", bucket)]
        if operation in ("PutObject", "GetObject"):
            return [Request(action, f"{bucket}/{params['Key']}")]
        if operation == "CreateBucket":
            return [Request(action, bucket)]
    raise AssertionError(f"no IAM mapping for {service}.{operation}: add it to _iam_policy.py")


# -- enforcing a policy on a boto3 session ----------------------------------------------------

_DENIED_CODE = {"iam": "AccessDenied", "s3": "AccessDenied"}


@dataclass
class Enforcer:
    """Denies, as AWS would (403 AccessDenied), every call ``policy`` does not allow."""

    policy: Mapping[str, Any]
    account: Account
    decisions: list[tuple[Request, bool]] = field(default_factory=list)

    def install(self, session: Any) -> None:
        session.events.register("provide-client-params", self._remember)
        session.events.register("before-call", self._authorise)

    @staticmethod
    def _remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["rk_params"] = dict(params)

    def _authorise(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        service = model.service_model.signing_name
        for request in requests_for(service, model.name, context["rk_params"], self.account):
            verdict = allowed(request, self.policy)
            self.decisions.append((request, verdict))
            if not verdict:
                message = f"not authorized to perform: {request.action} on {request.resource}"
                code = _DENIED_CODE.get(service, "AccessDeniedException")
                error = {"Error": {"Code": code, "Message": message}}
                metadata = {"ResponseMetadata": {"HTTPStatusCode": 403}}
                return AWSResponse("https://denied", 403, {}, None), {**error, **metadata}
        return None

    def actions(self, *, verdict: bool) -> set[str]:
        return {request.action for request, ok in self.decisions if ok is verdict}


def moto_account(session: Any, account: str, region: str) -> Account:
    """Lookups of roles and secrets that bypass the enforced session (its own clients)."""
    import boto3

    admin = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    iam, sm = admin.client("iam"), admin.client("secretsmanager")

    def role(name: str) -> tuple[str, str | None] | None:
        try:
            found = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            return None
        boundary = (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        return str(found["Path"]), boundary

    def secret(name: str) -> str | None:
        try:
            return str(sm.describe_secret(SecretId=name)["ARN"])
        except sm.exceptions.ResourceNotFoundException:
            return None

    return Account(id=account, region=region, role=role, secret=secret)
