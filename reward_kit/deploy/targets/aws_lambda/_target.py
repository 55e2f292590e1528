"""``aws-lambda``: execution role, key in Secrets Manager, function from the zip, function URL.

    >>> target = LambdaTarget()  # boto3's default session (env, profile, instance role)
    >>> target.name, target.artifact.value
    ('aws-lambda', 'lambda-zip')

Tests pass ``endpoint_url`` (a moto server) or run inside ``moto.mock_aws``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ...._errors import ConfigurationError
from ...._extras import require
from ..._errors import DeployError
from ..._guards import check_auth_options
from ..._names import ArtifactKind
from ..._options import TargetOptions
from ..._sdk_snippet import sdk_snippet
from ..._spec import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter
from ._api import aws_api, missing
from ._bundle import read_bundle, upload_bundle
from ._function import LambdaFunction
from ._function_api import FunctionApi
from ._key_secret import ensure_key_secret
from ._options import LambdaOptions
from ._plan import plan_calls
from ._role import boundary_arn, delete_role, ensure_boundary, ensure_role
from ._url import ensure_url

__all__ = ["LambdaTarget"]


class LambdaTarget:
    """Deploys the Lambda zip as a function with a URL; re-running updates it in place."""

    name: ClassVar[str] = "aws-lambda"
    public: ClassVar[bool] = True
    options_model: ClassVar[type[LambdaOptions]] = LambdaOptions
    artifact: ClassVar[ArtifactKind] = ArtifactKind.LAMBDA_ZIP

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

    def _function(self, name: str, options: TargetOptions) -> LambdaFunction:
        """The function's options; the region falls back to the AWS profile's."""
        checked = LambdaOptions.coerce(options)
        region = checked.region or self._boto().region_name
        if not region:
            raise ConfigurationError(
                "aws-lambda needs a region: pass --region, set AWS_DEFAULT_REGION, or set region "
                "under [deploy.aws-lambda] in reward-kit.toml"
            )
        return LambdaFunction(name=name, options=checked, region=str(region))

    # -- validation (no AWS call) ---------------------------------------------------------

    def _checked(self, spec: DeploySpec) -> LambdaFunction:
        fn = self._function(spec.name, spec.options)
        check_auth_options(spec, self, invokers=fn.options.invokers)
        if spec.auth in ("mtls", "google-iam"):
            raise ConfigurationError(
                f"aws-lambda does not support --auth {spec.auth}: function URLs terminate TLS and "
                "authenticate AWS identities; use api-key or aws-iam"
            )
        if fn.options.aws_allowed_arns and spec.auth != "aws-iam":
            raise ConfigurationError(
                f"--aws-allow-arn has no effect with --auth {spec.auth}; it goes with "
                "--auth aws-iam"
            )
        if spec.auth == "aws-iam" and not fn.allowed_arns:
            raise ConfigurationError(
                "aws-lambda --auth aws-iam needs --invoker ARN (or --aws-allow-arn PATTERN): "
                "the identities allowed to call the function URL"
            )
        return fn

    def check(self, spec: DeploySpec, *, dry_run: bool = False) -> None:
        self._checked(spec)
        if not dry_run and self._boto().get_credentials() is None:  # a plan needs none
            raise ConfigurationError(
                "aws-lambda: no AWS credentials found. Set AWS_PROFILE (after `aws configure` or "
                "`aws sso login`) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )

    # -- plan / deploy --------------------------------------------------------------------

    def plan(self, spec: DeploySpec, artifacts: Artifacts) -> Sequence[PlannedCall]:
        fn = self._checked(spec)
        data, via_s3 = read_bundle(artifacts)
        return plan_calls(spec, fn, artifacts, size=len(data), via_s3=via_s3)

    def deploy(self, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter) -> Deployment:
        fn = self._checked(spec)
        data, via_s3 = read_bundle(artifacts)  # before any AWS call
        new_key, secret_arn = None, None
        if spec.auth == "api-key":
            sm = self._client("secretsmanager", fn.region)
            new_key, secret_arn = ensure_key_secret(sm, fn, reporter)
        role = fn.options.role_arn or self._role(fn, secret_arn, reporter)
        code = (
            upload_bundle(self._client("s3", fn.region), fn, data, lambda: self._account(fn))
            if via_s3
            else {"ZipFile": data}
        )
        lam = self._client("lambda", fn.region)
        api = FunctionApi(lam=lam, waiter=self._waiter, role_retry_delay=self._role_retry_delay)
        settings = fn.settings(spec.auth, artifacts, role, secret_arn)
        created = api.upsert(settings, code, fn.architecture(artifacts), reporter)
        api.reserve(fn, reporter)
        url = ensure_url(lam, spec.auth, fn, reporter)
        reporter.step(f"function {fn.function_name} is ready at {url}")
        details: dict[str, Any] = {
            "function": fn.function_name,
            "role": role,
            "created": created,
            "reserved_concurrency": fn.options.reserved_concurrency,
        }
        details |= {"secret_arn": secret_arn} if secret_arn else {}
        details |= {"api_key": new_key} if new_key is not None else {}
        # Lambda caps a synchronous request at 6 MB; the SDK's default batch is 8 MiB.
        snippet = sdk_snippet(url, spec.auth, region=fn.region, max_batch_bytes=5_000_000)
        return Deployment(url=url, auth=spec.auth, sdk_snippet=snippet, details=details)

    def _account(self, fn: LambdaFunction) -> str:
        with aws_api("sts", "GetCallerIdentity"):
            return str(self._client("sts", fn.region).get_caller_identity()["Account"])

    def _role(self, fn: LambdaFunction, secret_arn: str | None, reporter: Reporter) -> str:
        iam = self._client("iam", fn.region)
        account = self._account(fn)
        boundary = fn.options.permissions_boundary or boundary_arn(account)
        ensure_boundary(iam, boundary, account, reporter)
        return ensure_role(iam, fn, boundary, secret_arn, reporter)

    # -- status / delete ------------------------------------------------------------------

    def status(self, name: str, options: TargetOptions) -> Mapping[str, Any]:
        fn = self._function(name, options)
        lam = self._client("lambda", fn.region)
        with aws_api("lambda", "GetFunction"):
            function = lam.get_function(FunctionName=fn.function_name)
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
                url = lam.get_function_url_config(FunctionName=fn.function_name)
            result.update(url=url["FunctionUrl"], url_auth=url["AuthType"])
        except DeployError as error:
            if not missing(error):
                raise
            result["url"] = None
        return result

    def delete(self, name: str, options: TargetOptions, reporter: Reporter) -> None:
        fn = self._function(name, options)
        lam = self._client("lambda", fn.region)
        sm, iam = self._client("secretsmanager", fn.region), self._client("iam", fn.region)
        function = fn.function_name
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("function URL", lambda: lam.delete_function_url_config(FunctionName=function)),
            (f"function {function}", lambda: lam.delete_function(FunctionName=function)),
            # Without recovery: a later deploy of the same name must be able to recreate it.
            (f"secret {fn.secret_name}", lambda: sm.delete_secret(
                SecretId=fn.secret_name, ForceDeleteWithoutRecovery=True)),
            (f"role {fn.role_name}", lambda: delete_role(iam, fn.role_name)),
        ]  # fmt: skip
        for what, call in steps:
            reporter.step(f"deleting {what}")
            try:
                with aws_api("delete", what):
                    call()
            except DeployError as error:
                if not missing(error):
                    raise
                reporter.step(f"no {what} (already deleted)")
