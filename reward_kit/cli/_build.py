"""``rk build``: the deploy artifacts (a Docker build context or a Lambda zip), nothing deployed."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["build_command"]


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
    type=click.Choice(["docker", "lambda-zip"]),
    default="docker",
    show_default=True,
    help="A Docker build context (+ docker-compose.yml), or an AWS Lambda zip.",
)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--name", default="evaluator", show_default=True, help="Image / bundle name.")
@click.option(
    "--auth",
    type=click.Choice(["api-key", "google-iam", "aws-iam", "mtls", "none"]),
    default="api-key",
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
def build_command(
    sources: tuple[str, ...],
    kind: str,
    out: str,
    name: str,
    auth: str,
    requirements: str | None,
    base_image: str | None,
    wheelhouse: bool,
    architecture: str,
) -> None:
    """Build deploy artifacts for reward SOURCES (file.py, file.py:fn, pkg.mod:fn) into --out.

    Example: rk build rewards.py --format lambda-zip --out build/
    """
    from ..deploy import DeploySpec
    from ..deploy._context import build_docker_context
    from ..deploy._lambda import build_lambda_zip

    spec = DeploySpec(
        name=name,
        sources=sources,
        auth=auth,  # type: ignore[arg-type]  # click.Choice checked it
        requirements=_read_requirements(requirements),
    )
    target = Path(out)
    if kind == "docker":
        artifacts = build_docker_context(
            spec, target, base_image=base_image, wheelhouse=wheelhouse, architecture=architecture
        )
        click.echo(f"wrote {artifacts.docker_context} (Dockerfile, wheels, app)")
        click.echo(f"wrote {artifacts.extra['compose_file']}")
        click.echo(f"build: docker build -t {artifacts.extra['image']} {artifacts.docker_context}")
        return
    artifacts = build_lambda_zip(spec, target, architecture=architecture)
    extra = artifacts.extra
    click.echo(
        f"wrote {artifacts.lambda_zip} ({extra['zipped_bytes'] / 2**20:.1f} MB zipped, "
        f"{extra['unzipped_bytes'] / 2**20:.1f} MB unzipped); handler {extra['handler']}, "
        f"runtime {extra['runtime']}, {extra['architecture']}"
    )
    if extra["size_note"]:
        click.secho(f"note: {extra['size_note']}", fg="yellow")
