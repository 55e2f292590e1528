"""The build step: make the kind of artifact a target deploys, or reuse what ``rk build`` made.

>>> sorted(kind.value for kind in BUILDERS)
['docker', 'lambda-zip']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..._errors import ConfigurationError
from .._names import ArtifactKind
from .._options import BuildOptions
from .._spec import Artifacts, DeploySpec, Reporter
from ._docker_context import build_docker_context
from ._lambda_zip import build_lambda_zip

__all__ = ["BUILDERS", "Build", "build_artifacts", "prebuilt_artifacts", "report_artifacts"]

# How a deploy gets its artifact: build it, or (``--from-build``) find it.
Build = Callable[[DeploySpec, ArtifactKind, Path], Artifacts]


def _docker(spec: DeploySpec, out: Path, options: BuildOptions) -> Artifacts:
    return build_docker_context(
        spec,
        out,
        base_image=options.base_image,
        wheelhouse=options.wheelhouse,
        architecture=options.architecture,
        include=options.include,
        sandbox=options.sandbox,
    )


def _lambda_zip(spec: DeploySpec, out: Path, options: BuildOptions) -> Artifacts:
    return build_lambda_zip(spec, out, architecture=options.architecture, include=options.include)


BUILDERS: dict[ArtifactKind, Callable[[DeploySpec, Path, BuildOptions], Artifacts]] = {
    ArtifactKind.DOCKER: _docker,
    ArtifactKind.LAMBDA_ZIP: _lambda_zip,
}


def build_artifacts(
    spec: DeploySpec, kind: ArtifactKind, out: Path, options: BuildOptions | None = None
) -> Artifacts:
    """Build ``kind`` for ``spec`` into ``out``; ``options`` default to the spec's options'."""
    return BUILDERS[kind](spec, out, options or spec.options.build_options())


def report_artifacts(artifacts: Artifacts, kind: ArtifactKind, reporter: Reporter) -> None:
    """Say which of the user's files went in, and warn about any that look like secrets."""
    files = artifacts.extra.get("files")
    if files:
        reporter.step(f"your code in the artifact: {', '.join(files)}")
    for finding in artifacts.extra.get("secret_warnings") or ():
        reporter.step(f"WARNING: {finding}; choose the files with --include")
    if artifacts.extra.get("sandbox") and not kind.runs_sandbox:
        reporter.step(
            "WARNING: a target uses the code rewards' sandbox, which cannot run on AWS Lambda "
            "(no bubblewrap, no user namespaces): those rewards will answer sandbox_unavailable. "
            "Deploy them to gcp-cloud-run or a container instead"
        )


def prebuilt_artifacts(folder: Path) -> Build:
    """A build step that reuses ``rk build --out FOLDER`` output instead of building again."""

    def reuse(spec: DeploySpec, kind: ArtifactKind, out: Path) -> Artifacts:
        if kind is ArtifactKind.LAMBDA_ZIP:
            bundle = folder / f"{spec.name}.zip"
            if not bundle.is_file():
                raise ConfigurationError(
                    f"{bundle} does not exist: run rk build --format lambda-zip --name {spec.name}"
                )
            return Artifacts(out_dir=out, lambda_zip=bundle)
        context = folder / "context"
        if not (context / "Dockerfile").is_file():
            raise ConfigurationError(f"{context}/Dockerfile does not exist: run rk build first")
        # An image built for the code rewards carries the sandbox; its platform settings follow.
        sandbox = "bubblewrap" in (context / "Dockerfile").read_text()
        return Artifacts(out_dir=out, docker_context=context, extra={"sandbox": sandbox})

    return reuse
