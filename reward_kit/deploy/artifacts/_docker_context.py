"""The Docker build context for an evaluator: code, requirements, reward-kit's wheel, Dockerfile.

Layout of ``out``::

    context/Dockerfile, .dockerignore, requirements.txt
    context/wheels/reward_kit-<version>-py3-none-any.whl   (+ every dependency: wheelhouse)
    context/app/src/rewards.py ...                         (the user's reward code)
    docker-compose.yml                                     (builds ./context)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..._errors import ConfigurationError
from ..._loader import load_functions
from ..._version import __version__
from .._spec import Artifacts, DeploySpec
from ._dockerfile import (
    DEFAULT_BASE_IMAGE,
    DockerfileInputs,
    auth_environment,
    render_compose,
    render_dockerfile,
    render_dockerignore,
)
from ._sandbox_use import SANDBOX_PACKAGES, uses_sandbox
from ._secret_scan import secret_findings
from ._sources import gather_requirements, stage_sources
from ._wheel import build_self_wheel

__all__ = ["build_docker_context", "image_tag", "pip_platform"]


def image_tag(name: str) -> str:
    """The local image name of a deploy: ``reward-kit/<name>:<version>``."""
    return f"reward-kit/{name}:{__version__}"


def pip_platform(architecture: str) -> str:
    """pip's ``--platform`` for a CPU architecture (Lambda's names or Docker's)."""
    platforms = {"x86_64": "manylinux2014_x86_64", "amd64": "manylinux2014_x86_64"}
    platforms |= {"arm64": "manylinux2014_aarch64", "aarch64": "manylinux2014_aarch64"}
    try:
        return platforms[architecture]
    except KeyError:
        raise ConfigurationError(
            f"unknown architecture {architecture!r}; choose x86_64 or arm64"
        ) from None


def build_docker_context(
    spec: DeploySpec,
    out: Path,
    *,
    base_image: str | None = None,
    wheelhouse: bool = False,
    python_version: str = "3.11",
    architecture: str = "x86_64",
    include: Sequence[str] | None = None,
    sandbox: bool | None = None,
) -> Artifacts:
    """Write a build context for ``spec`` under ``out/context`` (replacing an old one).

    ``wheelhouse=True`` downloads every dependency on this machine into ``context/wheels`` (for
    ``python_version`` and ``architecture``) and the Dockerfile installs with ``--no-index``:
    the image build then needs no network. ``include`` lists the code files exactly
    (:func:`stage_sources`). ``sandbox`` installs bubblewrap for the code rewards (None:
    when a target uses them).

    >>> build_docker_context(DeploySpec(name="demo", sources=("rewards.py",)), Path("build"))
    ... # doctest: +SKIP
    Artifacts(out_dir=PosixPath('build'), docker_context=PosixPath('build/context'), ...)
    """
    functions = load_functions(spec.sources)  # the targets import, or nothing is built
    requirements = gather_requirements(spec, functions)
    needs_sandbox = uses_sandbox(functions) if sandbox is None else sandbox
    context = out / "context"
    if context.exists():
        shutil.rmtree(context)
    context.mkdir(parents=True)
    staged = stage_sources(spec, context / "app", include=include)
    # Built-in targets only (reward_kit.rewards:...) stage no code, yet the image copies app/.
    (context / "app").mkdir(exist_ok=True)
    wheel = build_self_wheel(context / "wheels")
    (context / "requirements.txt").write_text(
        "# The reward functions' requirements (decorators' requirements= and --requirements).\n"
        + "".join(f"{line}\n" for line in requirements)
    )
    pip_args = f'"/tmp/wheels/{wheel.name}[server]" -r /tmp/requirements.txt'
    if wheelhouse:
        _download_wheels(context, wheel, python_version, architecture)
        pip_args = f"--no-index --find-links /tmp/wheels {pip_args}"
    inputs = _dockerfile_inputs(spec, staged.targets, pip_args, base_image, needs_sandbox)
    (context / "Dockerfile").write_text(render_dockerfile(inputs))
    (context / ".dockerignore").write_text(render_dockerignore())
    (out / "docker-compose.yml").write_text(_compose(spec))
    return Artifacts(
        out_dir=out,
        docker_context=context,
        image=inputs.image,
        targets=tuple(staged.targets),
        requirements=tuple(requirements),
        wheel=wheel.name,
        compose_file=out / "docker-compose.yml",
        files=tuple(f"app/{name}" for name, _ in staged.files),
        secret_warnings=tuple(
            secret_findings((f"app/{name}", path) for name, path in staged.files)
        ),
        sandbox=needs_sandbox,
    )


def _dockerfile_inputs(
    spec: DeploySpec, targets: Sequence[str], pip_args: str, base_image: str | None,
    sandbox: bool,
) -> DockerfileInputs:  # fmt: skip
    # File targets were staged under /app; module targets import from /app (the WORKDIR).
    in_image = [f"/app/{t}" if ".py" in t else t for t in targets]
    environment = {"RK_TARGETS": ",".join(in_image), **auth_environment(spec.auth)}
    return DockerfileInputs(
        image=image_tag(spec.name),
        generator="rk build",
        copy_install=("COPY wheels/ /tmp/wheels/", "COPY requirements.txt /tmp/requirements.txt"),
        pip_args=pip_args,
        app_source="app/",
        environment=environment,
        base_image=base_image or DEFAULT_BASE_IMAGE,
        system_packages=SANDBOX_PACKAGES if sandbox else (),
    )


def _compose(spec: DeploySpec) -> str:
    api_key_file = "./secrets/rk_api_keys" if spec.auth == "api-key" else None
    return render_compose(
        name=spec.name,
        image=image_tag(spec.name),
        context="./context",
        environment={"RK_LOG_LEVEL": "info"},
        api_key_file=api_key_file,
        generator="rk build",
        usage=_compose_usage(api_key_file),
    )


def _compose_usage(api_key_file: str | None) -> str:
    if api_key_file is None:
        return "Start: docker compose up -d"
    return (
        f"Start: mkdir -p secrets && rk keys generate --id me (the 'ID sha256:...' line goes in "
        f"{api_key_file}; keep the key), then docker compose up -d"
    )


def _download_wheels(context: Path, wheel: Path, python_version: str, architecture: str) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--platform", pip_platform(architecture),
        "--implementation", "cp", "--python-version", python_version,
        "--dest", str(context / "wheels"),
        f"{wheel}[server]", "-r", str(context / "requirements.txt"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigurationError(
            "could not download the wheels for an offline image build (a requirement with no "
            f"binary wheel for {pip_platform(architecture)} cannot go in a wheelhouse):\n"
            + (result.stderr.strip() or result.stdout.strip())
        )
