"""``rk deploy``: from a reward file to a running, authenticated evaluator.

Layout: :mod:`.artifacts` builds what a target deploys (a Docker build context or a Lambda
zip); :mod:`.targets` holds the targets (``local``, ``gcp-cloud-run``, ``aws-lambda``), each
with its options model; this package holds what they share: the :class:`DeploySpec` and
:class:`Target` vocabulary, option resolution (flag > reward-kit.toml > environment >
default, :func:`resolve_deploy`) and :func:`run_deploy`.

Names are imported on first use (``_lazy.py`` says why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._config import CONFIG_FILE, DeployConfig, load_config
    from ._errors import DeployError
    from ._names import AUTH_MODES, TARGET_NAMES, ArtifactKind, AuthMode
    from ._options import BuildOptions, TargetOptions
    from ._plan import write_plan
    from ._registry import TARGETS, get_target, options_model
    from ._resolve import DeployDefaults, ResolvedDeploy, resolve_deploy
    from ._runner import run_deploy
    from ._spec import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter
    from ._target import Target
    from .artifacts import build_artifacts, prebuilt_artifacts, report_artifacts
    from .targets import (
        CloudRunOptions,
        CloudRunTarget,
        LambdaOptions,
        LambdaTarget,
        LocalOptions,
        LocalTarget,
    )

__all__ = [
    "AUTH_MODES",
    "ArtifactKind",
    "Artifacts",
    "AuthMode",
    "BuildOptions",
    "CONFIG_FILE",
    "CloudRunOptions",
    "CloudRunTarget",
    "DeployConfig",
    "DeployDefaults",
    "DeployError",
    "DeploySpec",
    "Deployment",
    "LambdaOptions",
    "LambdaTarget",
    "LocalOptions",
    "LocalTarget",
    "PlannedCall",
    "Reporter",
    "ResolvedDeploy",
    "TARGETS",
    "TARGET_NAMES",
    "Target",
    "TargetOptions",
    "build_artifacts",
    "get_target",
    "load_config",
    "options_model",
    "prebuilt_artifacts",
    "report_artifacts",
    "resolve_deploy",
    "run_deploy",
    "write_plan",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "CONFIG_FILE": "._config",
        "DeployConfig": "._config",
        "load_config": "._config",
        "DeployError": "._errors",
        "AUTH_MODES": "._names",
        "TARGET_NAMES": "._names",
        "AuthMode": "._names",
        "BuildOptions": "._options",
        "TargetOptions": "._options",
        "write_plan": "._plan",
        "TARGETS": "._registry",
        "get_target": "._registry",
        "options_model": "._registry",
        "DeployDefaults": "._resolve",
        "ResolvedDeploy": "._resolve",
        "resolve_deploy": "._resolve",
        "run_deploy": "._runner",
        "ArtifactKind": "._names",
        "Artifacts": "._spec",
        "DeploySpec": "._spec",
        "Deployment": "._spec",
        "PlannedCall": "._spec",
        "Reporter": "._spec",
        "Target": "._target",
        "build_artifacts": ".artifacts",
        "prebuilt_artifacts": ".artifacts",
        "report_artifacts": ".artifacts",
        "CloudRunOptions": ".targets",
        "CloudRunTarget": ".targets",
        "LambdaOptions": ".targets",
        "LambdaTarget": ".targets",
        "LocalOptions": ".targets",
        "LocalTarget": ".targets",
    },
)
