"""The build step: make the kind of artifact a target deploys, or reuse what ``rk build`` made.

>>> sorted(kind.value for kind in BUILDERS)
['docker', 'kubernetes', 'lambda-zip']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from ..._errors import ConfigurationError
from .._names import ArtifactKind
from .._options import BuildOptions
from .._spec import Artifacts, DeploySpec, Reporter
from ._docker_context import build_docker_context
from ._kubernetes import build_kubernetes
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


def _kubernetes(spec: DeploySpec, out: Path, options: BuildOptions) -> Artifacts:
    return build_kubernetes(spec, out, options)


BUILDERS: dict[ArtifactKind, Callable[[DeploySpec, Path, BuildOptions], Artifacts]] = {
    ArtifactKind.DOCKER: _docker,
    ArtifactKind.LAMBDA_ZIP: _lambda_zip,
    ArtifactKind.KUBERNETES: _kubernetes,
}


def build_artifacts(
    spec: DeploySpec, kind: ArtifactKind, out: Path, options: BuildOptions | None = None
) -> Artifacts:
    """Build ``kind`` for ``spec`` into ``out``; ``options`` default to the spec's options'.

    ``out/artifacts.json`` describes what was built, for ``rk deploy --from-build``."""
    artifacts = BUILDERS[kind](spec, out, options or spec.options.build_options())
    artifacts.write_manifest()
    return artifacts


def report_artifacts(artifacts: Artifacts, kind: ArtifactKind, reporter: Reporter) -> None:
    """Say which of the user's files went in, and warn about any that look like secrets."""
    if artifacts.files:
        reporter.step(f"your code in the artifact: {', '.join(artifacts.files)}")
    for finding in artifacts.secret_warnings:
        reporter.step(f"WARNING: {finding}; choose the files with --include")
    if artifacts.sandbox and kind is ArtifactKind.KUBERNETES:
        reporter.step(
            "WARNING: a target uses the code rewards' sandbox (bubblewrap), which the "
            "restricted Pod Security profile of these manifests does not allow (user namespaces, "
            "an unmasked /proc, no seccomp filter): those rewards will answer "
            "sandbox_unavailable. To run them, apply kubernetes-sandbox-patch.yaml in a "
            "namespace whose Pod Security level is privileged (docs/deploy.md, 'Code rewards "
            "on Kubernetes'), or serve them from another evaluator"
        )
    if artifacts.sandbox and not kind.runs_sandbox:
        reporter.step(
            "WARNING: a target uses the code rewards' sandbox, which cannot run on AWS Lambda "
            "(no bubblewrap, no user namespaces): those rewards will answer sandbox_unavailable. "
            "Deploy them to gcp-cloud-run or a container instead"
        )


def prebuilt_artifacts(folder: Path) -> Build:
    """A build step that reuses ``rk build --out FOLDER`` output instead of building again:
    what its ``artifacts.json`` says was built (a Lambda zip's architecture and runtime, an
    image's sandbox), not what this deploy's flags would have built."""

    def reuse(spec: DeploySpec, kind: ArtifactKind, out: Path) -> Artifacts:
        built = Artifacts.read_manifest(folder)
        if kind is ArtifactKind.LAMBDA_ZIP:
            if built.lambda_zip is None or not built.lambda_zip.is_file():
                raise ConfigurationError(
                    f"{folder} holds no Lambda zip: run rk build --format lambda-zip "
                    f"--name {spec.name} --out {folder}"
                )
        elif built.docker_context is None or not (built.docker_context / "Dockerfile").is_file():
            raise ConfigurationError(f"{folder} holds no Docker context: run rk build first")
        return dataclasses.replace(built, out_dir=out)  # the deploy writes its files in out

    return reuse
