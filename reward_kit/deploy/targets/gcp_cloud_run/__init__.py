"""``--target gcp-cloud-run``: an evaluator image as a Cloud Run service."""

from ._options import CloudRunOptions
from ._target import CloudRunTarget

__all__ = ["CloudRunOptions", "CloudRunTarget"]
