"""The one small interface every deploy target implements.

A target names its options model (validated before anything else), the kind of artifact it
deploys (the build step makes that kind, whatever the target), and answers ``check``,
``plan``, ``deploy``, ``status`` and ``delete``. ``--dry-run`` builds the artifacts and asks
for :meth:`Target.plan` instead of :meth:`Target.deploy`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from ._names import ArtifactKind
from ._options import TargetOptions
from ._spec import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter

__all__ = ["Target"]


class Target(Protocol):
    """A place evaluators run: one package per target under ``reward_kit.deploy.targets``."""

    name: ClassVar[str]
    # Whether the whole internet can reach what it deploys (local publishes on 127.0.0.1).
    public: ClassVar[bool]

    @property
    def options_model(self) -> type[TargetOptions]:
        """The target's options: ``-o KEY=VALUE``, flags and reward-kit.toml validate here."""
        ...

    @property
    def artifact(self) -> ArtifactKind:
        """The kind of artifact the build step makes for this target."""
        ...

    def check(self, spec: DeploySpec, *, dry_run: bool = False) -> None:
        """Fail with a clear ConfigurationError before any cloud call (options, auth and,
        unless ``dry_run``, credentials)."""
        ...

    def plan(self, spec: DeploySpec, artifacts: Artifacts) -> Sequence[PlannedCall]: ...

    def deploy(self, spec: DeploySpec, artifacts: Artifacts, reporter: Reporter) -> Deployment:
        """Create or update in place (re-running a deploy updates it)."""
        ...

    def status(self, name: str, options: TargetOptions) -> Mapping[str, Any]: ...

    def delete(self, name: str, options: TargetOptions, reporter: Reporter) -> None: ...
