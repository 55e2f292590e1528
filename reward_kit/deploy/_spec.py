"""The values a deploy passes along: what to deploy, what was built, what a plan calls, the result.

A deploy is: resolve the options -> ``Target.check`` (before any cloud call) -> build the
target's kind of artifact -> ``Target.deploy`` (or ``Target.plan`` for ``--dry-run``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from .._errors import ConfigurationError
from .._vocabulary import DEFAULT_AUTH
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
    auth: AuthMode = DEFAULT_AUTH
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


MANIFEST = "artifacts.json"


@dataclass(frozen=True, kw_only=True)
class Artifacts:
    """What the build step produced (paths are inside the output folder), and what a deploy
    of it must know: ``rk build`` writes it to ``artifacts.json`` so ``--from-build`` deploys
    exactly what was built (a Lambda zip's architecture and runtime, an image's sandbox)."""

    out_dir: Path
    docker_context: Path | None = None
    lambda_zip: Path | None = None
    # Your files that went in, and any that look like secrets.
    files: tuple[str, ...] = ()
    secret_warnings: tuple[str, ...] = ()
    # The artifact runs the code rewards' sandbox (bubblewrap in the image).
    sandbox: bool = False
    targets: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    # Docker
    image: str | None = None
    wheel: str | None = None
    compose_file: Path | None = None
    # Kubernetes: the folder of manifests (``kubectl apply -f``)
    manifests: Path | None = None
    # Lambda
    handler: str | None = None
    runtime: str | None = None
    architecture: str | None = None
    zipped_bytes: int | None = None
    unzipped_bytes: int | None = None
    upload_via_s3: bool = False
    size_note: str = ""

    def write_manifest(self) -> Path:
        """Save this description next to the artifacts (paths relative to ``out_dir``)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "out_dir"}
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value.relative_to(self.out_dir))
        path = self.out_dir / MANIFEST
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    @classmethod
    def read_manifest(cls, folder: Path) -> Artifacts:
        """What ``rk build --out FOLDER`` made, as its manifest says."""
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ConfigurationError(
                f"{path} is missing or unreadable ({error}): run rk build --out {folder} again"
            ) from None
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known or key == "out_dir":
                continue
            paths = ("docker_context", "lambda_zip", "compose_file", "manifests")
            if key in paths and value is not None:
                value = folder / value
            elif isinstance(value, list):
                value = tuple(value)
            values[key] = value
        return cls(out_dir=folder, **values)


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
