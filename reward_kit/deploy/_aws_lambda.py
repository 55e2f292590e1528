"""``aws-lambda``: execution role, key in Secrets Manager, function from the zip, function URL.

    >>> target = LambdaTarget()  # boto3's default session (env, profile, instance role)
    >>> target.name
    'aws-lambda'

Tests pass ``endpoint_url`` (a moto server) or run inside ``moto.mock_aws``.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from .._errors import ConfigurationError
from .._extras import require
from ._aws_parts import (
    LambdaOptions,
    aws_api,
    ensure_key_secret,
    ensure_role,
    error_code,
    retry_new_role,
    url_statements,
)
from ._common import DeployError, sdk_snippet
from ._target import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter

__all__ = ["LambdaTarget"]

# AWS Lambda quotas (not readable from the API everywhere, so constants): a zip up to 50 MB
# may be uploaded directly, 250 MB unzipped at most (layers included).
ZIPPED_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024
DEFAULT_HANDLER = "rk_lambda.handler"


class LambdaTarget:
    """Deploys the Lambda zip as a function with a URL; re-running updates it in place."""

    name: ClassVar[str] = "aws-lambda"

    def __init__(
        self,
        *,
        session: Any = None,
        endpoint_url: str | None = None,
        waiter_delay: int = 2,
        role_retry_delay: float = 3.0,
    ) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self._waiter = {"Delay": waiter_delay, "MaxAttempts": max(1, 600 // max(1, waiter_delay))}
        self._role_retry_delay = role_retry_delay

    def _boto(self) -> Any:
        if self._session is None:
            boto3 = require("boto3", extra="aws-deploy", feature="aws-lambda")
            self._session = boto3.session.Session()
        return self._session

    def _client(self, service: str, region: str) -> Any:
        return self._boto().client(service, region_name=region, endpoint_url=self._endpoint_url)

    def _options(self, spec: DeploySpec) -> LambdaOptions:
        # botocore reads AWS_DEFAULT_REGION; AWS_REGION is what the AWS CLI v2 and SDKs also use.
        region = self._boto().region_name or os.environ.get("AWS_REGION")
        return LambdaOptions.from_spec(spec, default_region=region)

    # -- validation (no AWS call) ---------------------------------------------------------

    def check(self, spec: DeploySpec) -> None:
        self._options(spec)
        if spec.options.get("dry_run"):  # a plan needs no credentials
            return
        if self._boto().get_credentials() is None:
            raise ConfigurationError(
                "aws-lambda: no AWS credentials found. Set AWS_PROFILE (after `aws configure` or "
                "`aws sso login`) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )

    @staticmethod
    def _bundle(artifacts: Artifacts) -> tuple[bytes, bool]:
        """The zip's bytes and whether it must go through S3; refuses a bundle over 250 MB."""
        if artifacts.lambda_zip is None:
            raise ConfigurationError("aws-lambda needs a Lambda zip (rk build --format lambda-zip)")
        path = Path(artifacts.lambda_zip)
        with zipfile.ZipFile(path) as bundle:
            unzipped = sum(info.file_size for info in bundle.infolist())
        if unzipped > UNZIPPED_LIMIT:
            raise ConfigurationError(
                f"the Lambda bundle {path.name} is {unzipped / 2**20:.1f} MB unzipped, over "
                f"Lambda's {UNZIPPED_LIMIT // 2**20} MB limit: drop large requirements"
            )
        data = path.read_bytes()
        return data, len(data) > ZIPPED_LIMIT or bool(artifacts.extra.get("upload_via_s3"))

    def _function_settings(
        self, spec: DeploySpec, options: LambdaOptions, artifacts: Artifacts, role: str,
        secret_arn: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "FunctionName": spec.name,
            "Role": role,
            "Runtime": str(artifacts.extra.get("runtime", "python3.11")),
            "Handler": str(artifacts.extra.get("handler", DEFAULT_HANDLER)),
            "Timeout": options.timeout,
            "MemorySize": options.memory,
            "Environment": {"Variables": options.environment(spec.auth, secret_arn)},
        }

    # -- plan / deploy --------------------------------------------------------------------

    def plan(self, spec: DeploySpec, artifacts: Artifacts) -> Sequence[PlannedCall]:
        options = self._options(spec)
        data, via_s3 = self._bundle(artifacts)
        calls: list[PlannedCall] = []
        secret = f"<ARN of {options.secret_name}>" if spec.auth == "api-key" else None
        if secret:
            calls.append(
                PlannedCall(
                    service="secretsmanager",
                    method="DescribeSecret/CreateSecret",
                    summary=f"store the API key's hash in {options.secret_name}",
                    request={"Name": options.secret_name, "SecretString": "<new key hash>"},
                )
            )
        calls.append(
            PlannedCall(
                service="iam",
                method="GetRole/CreateRole+AttachRolePolicy+PutRolePolicy",
                summary=f"execution role {options.role_name}: logs, and read {secret or 'nothing'}",
                request={"RoleName": options.role_name, "PolicyArn": "AWSLambdaBasicExecutionRole"},
            )
        )
        code = (
            {"S3Bucket": options.s3_bucket or "reward-kit-ACCOUNT-REGION", "S3Key": "..."}
            if via_s3
            else {"ZipFile": f"<{len(data)} bytes>"}
        )
        settings = self._function_settings(
            spec, options, artifacts, f"<{options.role_name}>", secret
        )
        calls += [
            PlannedCall(
                service="lambda",
                method="GetFunction/CreateFunction|UpdateFunctionCode+UpdateFunctionConfiguration",
                summary=f"create or update function {spec.name} ({len(data)} bytes zipped)",
                request={**settings, "Code": code, "Architectures": [self._arch(spec, artifacts)]},
            ),
            PlannedCall(
                service="lambda",
                method="CreateFunctionUrlConfig|UpdateFunctionUrlConfig",
                summary="function URL",
                request={"AuthType": "AWS_IAM" if spec.auth == "aws-iam" else "NONE"},
            ),
        ]
        calls += [
            PlannedCall(service="lambda", method="AddPermission", summary=sid, request=statement)
            for sid, statement in url_statements(spec.auth, options).items()
        ]
        return calls

    @staticmethod
    def _arch(spec: DeploySpec, artifacts: Artifacts) -> str:
        # A prebuilt zip (--from-build) carries no facts; then the option says what it is.
        return str(
            artifacts.extra.get("architecture") or spec.options.get("architecture") or "x86_64"
        )

    def deploy(self, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter) -> Deployment:
        options = self._options(spec)
        data, via_s3 = self._bundle(artifacts)  # before any AWS call
        region = options.region
        lam = self._client("lambda", region)
        new_key, secret_arn = None, None
        if spec.auth == "api-key":
            sm = self._client("secretsmanager", region)
            new_key, secret_arn = ensure_key_secret(sm, options, reporter)
        role = options.role_arn or ensure_role(
            self._client("iam", region), options, secret_arn, reporter
        )
        code = self._upload(spec, options, data) if via_s3 else {"ZipFile": data}
        settings = self._function_settings(spec, options, artifacts, role, secret_arn)
        created = self._upsert(lam, settings, code, self._arch(spec, artifacts), reporter)
        if options.reserved_concurrency is not None:
            reporter.step(f"reserving {options.reserved_concurrency} concurrent executions")
            with aws_api("lambda", "PutFunctionConcurrency"):
                lam.put_function_concurrency(
                    FunctionName=spec.name,
                    ReservedConcurrentExecutions=options.reserved_concurrency,
                )
        url = self._ensure_url(lam, spec, options, reporter)
        reporter.step(f"function {spec.name} is ready at {url}")
        details: dict[str, Any] = {"function": spec.name, "role": role, "created": created}
        if secret_arn:
            details["secret_arn"] = secret_arn
        if new_key is not None:
            details["api_key"] = new_key
        # Lambda caps a synchronous request at 6 MB; the SDK's default batch is 8 MiB.
        snippet = sdk_snippet(url, spec.auth, region=region, max_batch_bytes=5_000_000)
        return Deployment(url=url, auth=spec.auth, sdk_snippet=snippet, details=details)

    def _upload(self, spec: DeploySpec, options: LambdaOptions, data: bytes) -> dict[str, str]:
        s3 = self._client("s3", options.region)
        bucket = options.s3_bucket
        if bucket is None:
            with aws_api("sts", "GetCallerIdentity"):
                account = self._client("sts", options.region).get_caller_identity()["Account"]
            bucket = f"reward-kit-{account}-{options.region}"
            try:
                with aws_api("s3", "HeadBucket"):
                    s3.head_bucket(Bucket=bucket)
            except DeployError:
                location = {} if options.region == "us-east-1" else {
                    "CreateBucketConfiguration": {"LocationConstraint": options.region}
                }  # fmt: skip
                with aws_api("s3", "CreateBucket"):
                    s3.create_bucket(Bucket=bucket, **location)
        key = f"lambda/{spec.name}/{hashlib.sha256(data).hexdigest()[:16]}.zip"
        with aws_api("s3", "PutObject"):
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        return {"S3Bucket": bucket, "S3Key": key}

    def _upsert(
        self,
        lam: Any,
        settings: dict[str, Any],
        code: dict[str, Any],
        arch: str,
        reporter: Reporter,
    ) -> bool:
        name = settings["FunctionName"]
        try:
            with aws_api("lambda", "GetFunction"):
                lam.get_function(FunctionName=name)
            exists = True
        except DeployError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            exists = False
        if not exists:
            reporter.step(f"creating function {name}")

            def create() -> Any:
                with aws_api("lambda", "CreateFunction"):
                    return lam.create_function(
                        **settings, Code=code, Architectures=[arch], PackageType="Zip",
                        Tags={"managed-by": "reward-kit"},
                    )  # fmt: skip

            retry_new_role(create, delay=self._role_retry_delay)
            self._wait(lam, "function_active_v2", name)
            return True
        reporter.step(f"updating function {name} (code, then configuration)")
        with aws_api("lambda", "UpdateFunctionCode"):
            lam.update_function_code(FunctionName=name, Architectures=[arch], Publish=False, **code)
        # A function accepts one update at a time: wait for each (ResourceConflictException).
        self._wait(lam, "function_updated_v2", name)
        with aws_api("lambda", "UpdateFunctionConfiguration"):
            lam.update_function_configuration(**settings)
        self._wait(lam, "function_updated_v2", name)
        return False

    def _wait(self, lam: Any, waiter: str, name: str) -> None:
        with aws_api("lambda", f"waiter {waiter}"):
            lam.get_waiter(waiter).wait(FunctionName=name, WaiterConfig=self._waiter)

    def _ensure_url(self, lam: Any, spec: DeploySpec, options: LambdaOptions, rep: Reporter) -> str:
        auth_type = "AWS_IAM" if spec.auth == "aws-iam" else "NONE"
        try:
            with aws_api("lambda", "GetFunctionUrlConfig"):
                current = lam.get_function_url_config(FunctionName=spec.name)
            if current["AuthType"] != auth_type:
                rep.step(f"switching the function URL to AuthType {auth_type}")
                with aws_api("lambda", "UpdateFunctionUrlConfig"):
                    current = lam.update_function_url_config(
                        FunctionName=spec.name, AuthType=auth_type
                    )
        except DeployError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            rep.step(f"creating the function URL (AuthType {auth_type})")
            with aws_api("lambda", "CreateFunctionUrlConfig"):
                current = lam.create_function_url_config(
                    FunctionName=spec.name, AuthType=auth_type, InvokeMode="BUFFERED"
                )
        self._sync_permissions(lam, spec, options, rep)
        return str(current["FunctionUrl"])

    def _sync_permissions(
        self, lam: Any, spec: DeploySpec, options: LambdaOptions, rep: Reporter
    ) -> None:
        wanted = url_statements(spec.auth, options)
        present = self._statement_ids(lam, spec.name)
        for sid in sorted(present - wanted.keys()):
            if sid.startswith("rk-"):  # ours, from an earlier deploy with other auth/invokers
                rep.step(f"removing permission {sid}")
                with aws_api("lambda", "RemovePermission"):
                    lam.remove_permission(FunctionName=spec.name, StatementId=sid)
        for sid, statement in wanted.items():
            if sid not in present:
                rep.step(f"allowing {statement['Action']} for {statement['Principal']}")
                with aws_api("lambda", "AddPermission"):
                    lam.add_permission(FunctionName=spec.name, StatementId=sid, **statement)

    @staticmethod
    def _statement_ids(lam: Any, name: str) -> set[str]:
        import json

        try:
            with aws_api("lambda", "GetPolicy"):
                policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
        except DeployError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return set()
        return {str(s.get("Sid")) for s in policy.get("Statement", [])}

    # -- status / delete ------------------------------------------------------------------

    def _named(self, name: str, options: Mapping[str, Any]) -> LambdaOptions:
        spec = DeploySpec(name=name, sources=("-",), auth="none", options=options)
        return self._options(spec)

    def status(self, name: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
        opts = self._named(name, options)
        lam = self._client("lambda", opts.region)
        with aws_api("lambda", "GetFunction"):
            function = lam.get_function(FunctionName=name)
        config = function["Configuration"]
        result: dict[str, Any] = {
            "function": config["FunctionArn"],
            "state": config.get("State"),
            "last_update": config.get("LastUpdateStatus"),
            "runtime": config.get("Runtime"),
            "memory": config.get("MemorySize"),
            "code_size": config.get("CodeSize"),
            "reserved_concurrency": function.get("Concurrency", {}).get(
                "ReservedConcurrentExecutions"
            ),
        }
        try:
            with aws_api("lambda", "GetFunctionUrlConfig"):
                url = lam.get_function_url_config(FunctionName=name)
            result.update(url=url["FunctionUrl"], url_auth=url["AuthType"])
        except DeployError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            result["url"] = None
        return result

    def delete(self, name: str, options: Mapping[str, Any], reporter: Reporter) -> None:
        opts = self._named(name, options)
        lam = self._client("lambda", opts.region)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("function URL", lambda: lam.delete_function_url_config(FunctionName=name)),
            (f"function {name}", lambda: lam.delete_function(FunctionName=name)),
            (
                f"secret {opts.secret_name}",
                # Without recovery: a later deploy of the same name must be able to recreate it.
                lambda: self._client("secretsmanager", opts.region).delete_secret(
                    SecretId=opts.secret_name, ForceDeleteWithoutRecovery=True
                ),
            ),
            (f"role {opts.role_name}", lambda: self._delete_role(opts)),
        ]
        for what, call in steps:
            reporter.step(f"deleting {what}")
            try:
                with aws_api("delete", what):
                    call()
            except DeployError as error:
                if error_code(error) not in ("ResourceNotFoundException", "NoSuchEntity"):
                    raise
                reporter.step(f"no {what} (already deleted)")

    def _delete_role(self, opts: LambdaOptions) -> None:
        iam = self._client("iam", opts.region)
        for policy in iam.list_role_policies(RoleName=opts.role_name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=opts.role_name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=opts.role_name)[
            "AttachedPolicies"
        ]:
            iam.detach_role_policy(RoleName=opts.role_name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=opts.role_name)
