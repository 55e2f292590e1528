"""The one small interface every deploy target implements, and the values passed through it.

A deploy is: validate the spec (before any cloud call) -> build artifacts -> ``target.deploy``.
``--dry-run`` builds the artifacts and asks the target for its :meth:`Target.plan` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from .._errors import ConfigurationError

__all__ = [
    "AuthMode",
    "Artifacts",
    "DeploySpec",
    "Deployment",
    "PlannedCall",
    "Reporter",
    "Target",
]

AuthMode = Literal["api-key", "google-iam", "aws-iam", "mtls", "none"]
AUTH_MODES: tuple[str, ...] = ("api-key", "google-iam", "aws-iam", "mtls", "none")
# Cloud Run service names and Lambda function names both fit this; it is also a safe
# container, secret and role name component.
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,48}[a-z0-9]$")


@dataclass(frozen=True, kw_only=True)
class DeploySpec:
    """What to deploy: reward targets, their requirements, the auth mode and target options.

    >>> DeploySpec(name="math-rewards", sources=("rewards.py",), auth="api-key").name
    'math-rewards'
    """

    name: str
    sources: tuple[str, ...]
    auth: AuthMode = "api-key"
    requirements: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(
                f"invalid deploy name {self.name!r}: use 2-50 lowercase letters, digits and '-', "
                "starting with a letter and not ending with '-'"
            )
        if not self.sources:
            raise ConfigurationError("nothing to deploy: give at least one reward file")
        if self.auth not in AUTH_MODES:
            raise ConfigurationError(
                f"invalid auth mode {self.auth!r}; choose one of {', '.join(AUTH_MODES)}"
            )


@dataclass(frozen=True, kw_only=True)
class Artifacts:
    """What the build step produced (paths are inside the output folder)."""

    out_dir: Path
    docker_context: Path | None = None
    lambda_zip: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PlannedCall:
    """One API call a deploy would make (what ``--dry-run`` writes to plan.json)."""

    service: str
    method: str
    summary: str
    request: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """Where the evaluator now runs and how to call it."""

    url: str
    auth: AuthMode
    sdk_snippet: str
    details: Mapping[str, Any] = field(default_factory=dict)


class Reporter(Protocol):
    """Shows each step as it happens (the CLI prints; tests collect)."""

    def step(self, message: str) -> None: ...


class Target(Protocol):
    """A place evaluators run. One module per target under ``reward_kit.deploy``."""

    name: ClassVar[str]

    def check(self, spec: DeploySpec) -> None:
        """Fail with a clear ConfigurationError before any cloud call (credentials, project)."""
        ...

    def plan(self, spec: DeploySpec, artifacts: Artifacts) -> Sequence[PlannedCall]: ...

    def deploy(self, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter) -> Deployment:
        """Create or update in place (re-running a deploy updates it)."""
        ...

    def status(self, name: str, options: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def delete(self, name: str, options: Mapping[str, Any], reporter: Reporter) -> None: ...
