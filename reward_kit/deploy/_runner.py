"""One deploy, in order: validate (no cloud call) -> build artifacts -> deploy or write a plan."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._loader import load_functions
from ._guards import public_warning
from ._plan import write_plan
from ._spec import Deployment, DeploySpec, Reporter
from ._target import Target
from .artifacts import Build, build_artifacts, report_artifacts

__all__ = ["run_deploy"]


def run_deploy(
    spec: DeploySpec,
    target: Target,
    reporter: Reporter,
    *,
    out: Path,
    dry_run: bool = False,
    build: Build | None = None,
    load: Callable[[tuple[str, ...]], Any] = load_functions,
) -> Deployment | Path:
    """Validate, build into ``out``, then deploy (a Deployment) or plan (the plan.json path).

    ``spec.options`` become the target's options model first, so the build reads the
    target's settings (base image, architecture) and an option the target does not take
    fails here, before anything is built.
    """
    reporter.step(f"checking {target.name} settings")
    spec = dataclasses.replace(spec, options=target.options_model.coerce(spec.options))
    target.check(spec, dry_run=dry_run)
    if spec.auth == "none" and target.public:
        reporter.step(public_warning(target.name))
    reporter.step(f"importing {', '.join(spec.sources)}")
    # A reward file that does not import fails here, before any build work or cloud call.
    load(spec.sources)
    reporter.step(f"building artifacts into {out}")
    out.mkdir(parents=True, exist_ok=True)
    artifacts = (build or build_artifacts)(spec, target.artifact, out)
    report_artifacts(artifacts, target.artifact, reporter)
    if dry_run:
        path = write_plan(out, target.name, target.plan(spec, artifacts))
        reporter.step(f"wrote {path} (no cloud API was called)")
        return path
    return target.deploy(spec, artifacts, reporter)
