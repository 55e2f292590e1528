"""One deploy, in order: validate (no cloud call) -> build artifacts -> deploy or write a plan.

>>> sorted(TARGETS)
['aws-lambda', 'gcp-cloud-run', 'local']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from .._loader import load_functions
from ._common import write_plan
from ._target import Artifacts, Deployment, DeploySpec, Reporter, Target

__all__ = ["TARGETS", "build_artifacts", "get_target", "prebuilt_artifacts", "run_deploy"]

# name -> (module, class); imported only when used, so `rk deploy --target local` never
# imports a cloud SDK.
TARGETS: dict[str, tuple[str, str]] = {
    "local": ("._local", "LocalTarget"),
    "gcp-cloud-run": ("._gcp_cloud_run", "CloudRunTarget"),
    "aws-lambda": ("._aws_lambda", "LambdaTarget"),
}
# Tests replace a target's construction here (e.g. with fake endpoints).
FACTORIES: dict[str, Callable[[], Target]] = {}


def get_target(name: str) -> Target:
    """The target called ``name``, with its real clients (unless a test put a factory here)."""
    if name in FACTORIES:
        return FACTORIES[name]()
    if name not in TARGETS:
        raise ConfigurationError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
    module, cls = TARGETS[name]
    target: Target = getattr(importlib.import_module(module, __package__), cls)()
    return target


def build_artifacts(spec: DeploySpec, target: str, out: Path) -> Artifacts:
    """The artifact ``target`` deploys: a Lambda zip for aws-lambda, else a Docker context."""
    if target == "aws-lambda":
        from ._lambda import build_lambda_zip

        return build_lambda_zip(
            spec, out, architecture=str(spec.options.get("architecture") or "x86_64")
        )
    from ._context import build_docker_context

    base_image = spec.options.get("base_image")
    return build_docker_context(spec, out, base_image=str(base_image) if base_image else None)


def prebuilt_artifacts(folder: Path) -> Callable[[DeploySpec, str, Path], Artifacts]:
    """A build step that reuses ``rk build --out FOLDER`` output instead of building again."""

    def reuse(spec: DeploySpec, target: str, out: Path) -> Artifacts:
        if target == "aws-lambda":
            bundle = folder / f"{spec.name}.zip"
            if not bundle.is_file():
                raise ConfigurationError(
                    f"{bundle} does not exist: run rk build --format lambda-zip --name {spec.name}"
                )
            return Artifacts(out_dir=out, lambda_zip=bundle)
        context = folder / "context"
        if not (context / "Dockerfile").is_file():
            raise ConfigurationError(f"{context}/Dockerfile does not exist: run rk build first")
        return Artifacts(out_dir=out, docker_context=context)

    return reuse


def run_deploy(
    spec: DeploySpec,
    target: Target,
    reporter: Reporter,
    *,
    out: Path,
    dry_run: bool = False,
    build: Callable[[DeploySpec, str, Path], Artifacts] | None = None,
    load: Callable[[tuple[str, ...]], Any] = load_functions,
) -> Deployment | Path:
    """Validate, build into ``out``, then deploy (a Deployment) or plan (the plan.json path)."""
    reporter.step(f"checking {target.name} settings")
    target.check(spec)
    reporter.step(f"importing {', '.join(spec.sources)}")
    # A reward file that does not import fails here, before any build work or cloud call.
    load(spec.sources)
    reporter.step(f"building artifacts into {out}")
    out.mkdir(parents=True, exist_ok=True)
    artifacts = (build or build_artifacts)(spec, target.name, out)
    if dry_run:
        path = write_plan(out, target.name, target.plan(spec, artifacts))
        reporter.step(f"wrote {path} (no cloud API was called)")
        return path
    return target.deploy(spec, artifacts, reporter)
