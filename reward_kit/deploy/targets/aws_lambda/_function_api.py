"""Creating or updating the function, waiting for it, and its reserved concurrency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..._errors import DeployError
from ..._spec import Reporter
from ._api import aws_api, missing, retry_new_role
from ._function import LambdaFunction

__all__ = ["FunctionApi"]


@dataclass(frozen=True, kw_only=True)
class FunctionApi:
    """One Lambda client with the deploy's waiting and retrying settings."""

    lam: Any
    waiter: dict[str, int]
    role_retry_delay: float

    def upsert(
        self, settings: dict[str, Any], code: dict[str, Any], arch: str, reporter: Reporter
    ) -> bool:
        """Create the function, or update its code then its configuration; True if created."""
        name = settings["FunctionName"]
        if not self._exists(name):
            reporter.step(f"creating function {name}")

            def create() -> Any:
                with aws_api("lambda", "CreateFunction"):
                    return self.lam.create_function(
                        **settings, Code=code, Architectures=[arch], PackageType="Zip",
                        Tags={"managed-by": "reward-kit"},
                    )  # fmt: skip

            retry_new_role(create, delay=self.role_retry_delay)
            self.wait("function_active_v2", name)
            return True
        reporter.step(f"updating function {name} (code, then configuration)")
        with aws_api("lambda", "UpdateFunctionCode"):
            self.lam.update_function_code(
                FunctionName=name, Architectures=[arch], Publish=False, **code
            )
        # A function accepts one update at a time: wait for each (ResourceConflictException).
        self.wait("function_updated_v2", name)
        with aws_api("lambda", "UpdateFunctionConfiguration"):
            self.lam.update_function_configuration(**settings)
        self.wait("function_updated_v2", name)
        return False

    def _exists(self, name: str) -> bool:
        try:
            with aws_api("lambda", "GetFunction"):
                self.lam.get_function(FunctionName=name)
        except DeployError as error:
            if not missing(error):
                raise
            return False
        return True

    def wait(self, waiter: str, name: str) -> None:
        with aws_api("lambda", f"waiter {waiter}"):
            self.lam.get_waiter(waiter).wait(FunctionName=name, WaiterConfig=self.waiter)

    def reserve(self, fn: LambdaFunction, reporter: Reporter) -> None:
        """Reserve (and so cap) the function's concurrency, or remove the reservation."""
        name, reserved = fn.function_name, fn.options.reserved_concurrency
        if reserved is None:
            reporter.step("no reserved concurrency (--reserved-concurrency none)")
            with aws_api("lambda", "DeleteFunctionConcurrency"):
                self.lam.delete_function_concurrency(FunctionName=name)
            return
        reporter.step(f"reserving (and capping at) {reserved} concurrent executions")
        with aws_api("lambda", "PutFunctionConcurrency"):
            self.lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=reserved
            )
