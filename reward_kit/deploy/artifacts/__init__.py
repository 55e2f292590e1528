"""What a deploy ships: a Docker build context (and Kubernetes manifests for it) or an AWS
Lambda zip, built from reward files.

Both carry the user's code (``_sources``), a wheel of the running reward-kit (``_wheel``),
warnings for files that look like secrets (``_secret_scan``), and bubblewrap when a target
uses the code rewards' sandbox (``_sandbox_use``). :func:`build_artifacts` makes the kind a
target deploys; ``rk build`` calls the same. ``lambda_handler`` is what runs inside the zip.

Names are imported on first use, so the Lambda handler's cold start imports none of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._build import Build, build_artifacts, prebuilt_artifacts, report_artifacts
    from ._docker_context import build_docker_context, image_tag, pip_platform
    from ._dockerfile import API_KEYS_SECRET, auth_environment
    from ._kubernetes import build_kubernetes
    from ._lambda_zip import UNZIPPED_LIMIT, ZIPPED_LIMIT, build_lambda_zip

__all__ = [
    "API_KEYS_SECRET",
    "Build",
    "UNZIPPED_LIMIT",
    "ZIPPED_LIMIT",
    "auth_environment",
    "build_artifacts",
    "build_docker_context",
    "build_kubernetes",
    "build_lambda_zip",
    "image_tag",
    "pip_platform",
    "prebuilt_artifacts",
    "report_artifacts",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Build": "._build",
        "build_artifacts": "._build",
        "prebuilt_artifacts": "._build",
        "report_artifacts": "._build",
        "build_docker_context": "._docker_context",
        "image_tag": "._docker_context",
        "pip_platform": "._docker_context",
        "API_KEYS_SECRET": "._dockerfile",
        "auth_environment": "._dockerfile",
        "build_kubernetes": "._kubernetes",
        "UNZIPPED_LIMIT": "._lambda_zip",
        "ZIPPED_LIMIT": "._lambda_zip",
        "build_lambda_zip": "._lambda_zip",
    },
)
