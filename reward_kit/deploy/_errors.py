"""The error a deploy step raises when a cloud API refuses or fails it."""

from __future__ import annotations

from .._errors import RewardKitError

__all__ = ["DeployError"]


class DeployError(RewardKitError):
    """A cloud API refused or failed a deploy step; the message carries its answer verbatim."""

    code = "deploy_error"
