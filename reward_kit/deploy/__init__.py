"""``rk deploy``: from a reward file to a running, authenticated evaluator."""

from ._aws_lambda import LambdaTarget
from ._common import DeployError
from ._config import load_config
from ._gcp_cloud_run import CloudRunTarget
from ._runner import get_target, run_deploy
from ._target import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter, Target

__all__ = [
    "Artifacts",
    "CloudRunTarget",
    "DeployError",
    "DeploySpec",
    "Deployment",
    "LambdaTarget",
    "PlannedCall",
    "Reporter",
    "Target",
    "get_target",
    "load_config",
    "run_deploy",
]
