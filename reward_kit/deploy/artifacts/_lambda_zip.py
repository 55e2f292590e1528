"""The AWS Lambda zip bundle: dependencies for the Lambda platform, reward code, Mangum handler.

The zip is deterministic (sorted entries, fixed timestamps and modes, no bytecode and no
machine-specific files), so the same input gives the same bytes and the same CodeSha256: an
unchanged redeploy is visibly unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ..._errors import ConfigurationError
from ..._loader import load_functions
from ..._version import __version__
from .._spec import Artifacts, DeploySpec
from ._docker_context import pip_platform
from ._dockerfile import auth_environment, fill_template, read_template
from ._sandbox_use import uses_sandbox
from ._secret_scan import secret_findings
from ._sources import gather_requirements, stage_sources
from ._wheel import build_self_wheel, package_files, write_deterministic_zip

__all__ = [
    "EXTRA",
    "HANDLER",
    "ZIPPED_LIMIT",
    "UNZIPPED_LIMIT",
    "build_lambda_zip",
]

HANDLER = "rk_lambda.handler"
# What the bundle installs of reward-kit: the app and Mangum (pyproject's lambda-runtime extra),
# not the server extra: no uvicorn, uvloop, rich or pygments, none of which runs behind Mangum.
EXTRA = "lambda-runtime"
# AWS Lambda quotas (moto has no get_account_settings, so they are constants): direct upload
# of a zip up to 50 MB, and 250 MB unzipped including layers.
ZIPPED_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024


def build_lambda_zip(
    spec: DeploySpec,
    out: Path,
    *,
    architecture: str = "x86_64",
    python_version: str = "3.11",
    zipped_limit: int = ZIPPED_LIMIT,
    unzipped_limit: int = UNZIPPED_LIMIT,
    include: Sequence[str] | None = None,
) -> Artifacts:
    """Write ``out/<name>.zip`` (handler ``rk_lambda.handler``) and return its facts.

    Over ``unzipped_limit`` is an error; over ``zipped_limit`` sets ``upload_via_s3``.
    ``include`` lists the code files exactly (:func:`stage_sources`).

    >>> build_lambda_zip(DeploySpec(name="demo", sources=("rewards.py",)), Path("build"))
    ... # doctest: +SKIP
    """
    functions = load_functions(spec.sources)  # the targets import, or nothing is built
    requirements = gather_requirements(spec, functions)
    stage = out / "lambda"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    wheel = build_self_wheel(out / "wheels")
    _check_extra()
    _pip_install(stage, [f"{wheel}[{EXTRA}]", *requirements], architecture, python_version)
    _drop_machine_specific(stage)
    staged = stage_sources(spec, stage, include=include)
    (stage / "rk_lambda.py").write_text(_handler_module(spec, staged.targets))
    _compile_bytecode(stage, python_version)
    bundle = out / f"{spec.name}.zip"
    unzipped = _write_zip(stage, bundle, unzipped_limit)
    zipped = bundle.stat().st_size
    return Artifacts(
        out_dir=out,
        lambda_zip=bundle,
        handler=HANDLER,
        runtime=f"python{python_version}",
        architecture="arm64" if "aarch64" in pip_platform(architecture) else "x86_64",
        zipped_bytes=zipped,
        unzipped_bytes=unzipped,
        upload_via_s3=zipped > zipped_limit,
        size_note=_size_note(zipped, zipped_limit),
        targets=tuple(staged.targets),
        requirements=tuple(requirements),
        files=tuple(name for name, _ in staged.files),
        secret_warnings=tuple(secret_findings(staged.files)),
        # Lambda has no bubblewrap and allows no user namespaces: code rewards cannot run.
        sandbox=uses_sandbox(functions),
    )


def _check_extra() -> None:
    """The wheel carries the installed metadata; pip would skip an extra it does not list and
    build a bundle without FastAPI."""
    extras = metadata.distribution("reward-kit").metadata.get_all("Provides-Extra") or []
    if EXTRA not in extras:
        raise ConfigurationError(
            f"the installed reward-kit metadata has no {EXTRA!r} extra (it predates this code): "
            "reinstall it (`pip install -e .`) before building"
        )


def _handler_module(spec: DeploySpec, targets: Sequence[str]) -> str:
    """``rk_lambda.py``: the handler, with the targets and auth mode baked in."""
    return fill_template(
        read_template("rk_lambda.py.in"),
        {
            "VERSION": __version__,
            "TARGETS": json.dumps(list(targets)),
            "DEFAULTS": json.dumps(auth_environment(spec.auth), sort_keys=True),
        },
    )


def _write_zip(stage: Path, bundle: Path, unzipped_limit: int) -> int:
    """Zip ``stage`` into ``bundle``; returns the unzipped size (over the limit: an error)."""
    files = package_files(stage, bytecode=True)
    unzipped = sum(path.stat().st_size for path in files)
    if unzipped > unzipped_limit:
        raise ConfigurationError(
            f"the Lambda bundle is {_mb(unzipped)} unzipped, over Lambda's {_mb(unzipped_limit)} "
            "limit (layers included): drop large requirements, or deploy a container image"
        )
    write_deterministic_zip(
        ((p.relative_to(stage).as_posix(), p.read_bytes(), os.access(p, os.X_OK)) for p in files),
        bundle,
    )
    return unzipped


def _size_note(zipped: int, zipped_limit: int) -> str:
    if zipped <= zipped_limit:
        return ""
    return (
        f"the zip is {_mb(zipped)}, over the {_mb(zipped_limit)} limit for a direct upload: it "
        "must go through S3 (S3Bucket/S3Key)"
    )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _pip_install(stage: Path, requirements: list[str], architecture: str, version: str) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--only-binary=:all:", "--platform", pip_platform(architecture),
        "--implementation", "cp", "--python-version", version, "--target", str(stage),
        *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigurationError(
            "could not install the Lambda bundle's dependencies for "
            f"{pip_platform(architecture)} / Python {version} (every requirement needs a binary "
            "wheel for that platform):\n" + (result.stderr.strip() or result.stdout.strip())
        )


def _compile_bytecode(stage: Path, version: str) -> None:
    """Ship bytecode: Lambda's code folder is read-only, so without it every cold start compiles
    every module (the handler's cold import measured 2.3x slower, docs/benchmarks.md).

    Only when this interpreter is the target's version (bytecode is version-specific). The
    output is reproducible: hash-based .pyc (no timestamps), paths as on Lambda (/var/task), a
    fixed hash seed (set constants are marshalled in hash order), one process.
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" != version:
        return
    command = [
        sys.executable, "-m", "compileall", "-q", "-j", "1", "-d", "/var/task",
        "--invalidation-mode", "unchecked-hash", str(stage),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # Not checked: packages ship data files named .py that never compile (templates, test
    # fixtures); those simply get no .pyc, and everything else still does.
    subprocess.run(command, capture_output=True, env=env, check=False)


def _drop_machine_specific(stage: Path) -> None:
    """Remove what differs between machines or runs and is useless on Lambda."""
    # Console scripts carry this machine's interpreter path in their shebang.
    shutil.rmtree(stage / "bin", ignore_errors=True)
    for direct_url in stage.glob("*.dist-info/direct_url.json"):
        # Names the temporary path the local wheel was installed from; drop it from RECORD too.
        direct_url.unlink()
        record = direct_url.parent / "RECORD"
        if record.is_file():
            lines = record.read_text().splitlines(keepends=True)
            record.write_text("".join(x for x in lines if "/direct_url.json," not in x))
    for cache in sorted(stage.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
