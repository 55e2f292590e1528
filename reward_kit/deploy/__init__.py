"""``rk deploy``: from a reward file to a running, authenticated evaluator."""

from ._target import Artifacts, Deployment, DeploySpec, PlannedCall, Reporter, Target

__all__ = ["Artifacts", "DeploySpec", "Deployment", "PlannedCall", "Reporter", "Target"]
