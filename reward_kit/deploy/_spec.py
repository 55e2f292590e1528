"""The values a deploy passes along: what to deploy, what was built, what a plan calls, the result.

A deploy is: resolve the options -> ``Target.check`` (before any cloud call) -> build the
target's kind of artifact -> ``Target.deploy`` (or ``Target.plan`` for ``--dry-run``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .._errors import ConfigurationError
from ._names import AUTH_MODES, AuthMode
from ._options import TargetOptions

__all__ = [
    "Artifacts",
    "DeploySpec",
    "Deployment",
    "PlannedCall",
    "Reporter",
]

# Cloud Run service names and Lambda function names both fit this; it is also a safe
# container, secret and role name component.
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,48}[a-z0-9]$")


@dataclass(frozen=True, kw_only=True)
class DeploySpec:
    """What to deploy: reward targets, their requirements, the auth mode and target options.

    ``options`` is a target's options model (``LocalOptions``, ``CloudRunOptions``,
    ``LambdaOptions``); the target validates any other :class:`TargetOptions` into its own.

    >>> DeploySpec(name="math-rewards", sources=("rewards.py",), auth="api-key").name
    'math-rewards'
    """

    name: str
    sources: tuple[str, ...]
    auth: AuthMode = "api-key"
    requirements: tuple[str, ...] = ()
    options: TargetOptions = field(default_factory=TargetOptions)

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
        if not isinstance(self.options, TargetOptions):
            raise ConfigurationError(
                f"DeploySpec options must be a target's options model (LocalOptions, "
                f"CloudRunOptions, LambdaOptions), not {type(self.options).__name__}"
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
