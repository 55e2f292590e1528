"""``rk build``: the deploy artifacts (a Docker build context, with Kubernetes manifests if asked,
or a Lambda zip), nothing deployed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from .._vocabulary import DEFAULT_AUTH
from ..deploy import AUTH_MODES, ArtifactKind

if TYPE_CHECKING:
    from ..deploy import Artifacts

__all__ = ["build_command"]


class _Printer:
    """The file list and warnings, on stderr (stdout keeps what was written)."""

    def step(self, message: str) -> None:
        if message.startswith("WARNING"):
            click.secho(message, err=True, fg="red", bold=True)
        else:
            click.echo(message, err=True)


def _read_requirements(path: str | None) -> tuple[str, ...]:
    if path is None:
        return ()
    lines = Path(path).read_text().splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@click.command("build")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--format",
    "kind",
    type=click.Choice([kind.value for kind in ArtifactKind]),
    default="docker",
    show_default=True,
    help="A Docker build context (+ docker-compose.yml; kubernetes: + manifests), or an AWS "
    "Lambda zip.",
)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--name", default="evaluator", show_default=True, help="Image / bundle name.")
@click.option(
    "--auth",
    type=click.Choice(AUTH_MODES),
    default=DEFAULT_AUTH,
    show_default=True,
)
@click.option("--requirements", type=click.Path(dir_okay=False, exists=True), help="pip file.")
@click.option("--base-image", help="Default BASE_IMAGE of the Dockerfile. [python:3.11-slim]")
@click.option(
    "--wheelhouse",
    is_flag=True,
    help="docker: download every dependency into the context, so the image builds offline.",
)
@click.option(
    "--architecture",
    type=click.Choice(["x86_64", "arm64"]),
    default="x86_64",
    show_default=True,
    help="CPU of the target (pip platform of the wheels).",
)
@click.option(
    "--include",
    multiple=True,
    metavar="PATH",
    help="Bundle exactly these files/folders/globs (with the reward files) instead of every "
    "sibling .py file. [default: [build] include in reward-kit.toml]",
)
@click.option(
    "--image",
    help="kubernetes: the image the Deployment runs (where you push the context's build). "
    "[reward-kit/NAME:VERSION]",
)
@click.option(
    "--sandbox/--no-sandbox",
    default=None,
    help="docker: install bubblewrap for the code rewards. [default: when a target uses them]",
)
def build_command(
    sources: tuple[str, ...],
    kind: str,
    out: str,
    name: str,
    auth: str,
    requirements: str | None,
    base_image: str | None,
    wheelhouse: bool,
    architecture: Literal["x86_64", "arm64"],  # click.Choice checked it
    include: tuple[str, ...],
    image: str | None,
    sandbox: bool | None,
) -> None:
    """Build deploy artifacts for reward SOURCES (file.py, file.py:fn, pkg.mod:fn) into --out.

    Lists your files that went in and warns about any that look like secrets.

    Example: rk build rewards.py --format lambda-zip --out build/
    """
    if image is not None and kind != "kubernetes":
        raise click.UsageError("--image goes with --format kubernetes")
    from ..deploy import (
        DeploySpec,
        build_artifacts,
        load_config,
        report_artifacts,
        resolve_deploy,
    )

    # --include and --sandbox win over [build] in reward-kit.toml.
    flags = {"include": include, "sandbox": sandbox}
    options = resolve_deploy(None, flags=flags, config=load_config()).options
    build = dataclasses.replace(
        options.build_options(), base_image=base_image, wheelhouse=wheelhouse,
        architecture=architecture, image=image,
    )  # fmt: skip
    spec = DeploySpec(
        name=name,
        sources=sources,
        auth=auth,  # type: ignore[arg-type]  # click.Choice checked it
        requirements=_read_requirements(requirements),
    )
    artifact = ArtifactKind(kind)
    artifacts = build_artifacts(spec, artifact, Path(out), build)
    report_artifacts(artifacts, artifact, _Printer())
    if artifact is ArtifactKind.LAMBDA_ZIP:
        _describe_zip(artifacts)
    else:
        _describe_context(artifacts)
    if artifact is ArtifactKind.KUBERNETES:
        _describe_manifests(artifacts)


def _describe_context(artifacts: Artifacts) -> None:
    context = artifacts.docker_context
    click.echo(f"wrote {context} (Dockerfile, wheels, app)")
    click.echo(f"wrote {artifacts.compose_file}")
    click.echo(f"build: docker build -t {artifacts.image} {context}")
    if artifacts.sandbox:
        click.echo(
            "sandbox: the image has bubblewrap for the code rewards; the container needs "
            "user namespaces and an unmasked /proc (docs/deploy.md, 'Code rewards in a "
            "container')"
        )


def _describe_manifests(artifacts: Artifacts) -> None:
    click.echo(f"wrote {artifacts.manifests} (Deployment, Service, HPA, PDB, NetworkPolicy)")
    click.echo(f"push: docker push {artifacts.image}")
    click.echo(f"then: kubectl apply -f {artifacts.manifests}  (the secret first: see "
               "deployment.yaml's header, docs/deploy.md 'Kubernetes')")  # fmt: skip


def _describe_zip(artifacts: Artifacts) -> None:
    zipped, unzipped = artifacts.zipped_bytes or 0, artifacts.unzipped_bytes or 0
    click.echo(
        f"wrote {artifacts.lambda_zip} ({zipped / 2**20:.1f} MB zipped, "
        f"{unzipped / 2**20:.1f} MB unzipped); handler {artifacts.handler}, "
        f"runtime {artifacts.runtime}, {artifacts.architecture}"
    )
    if artifacts.size_note:
        click.secho(f"note: {artifacts.size_note}", fg="yellow")
