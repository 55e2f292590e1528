"""Where evaluators run: one package per target, each with its options model.

Importing a target imports no cloud SDK; each SDK is imported when a deploy first needs it.
"""

from .aws_lambda import LambdaOptions, LambdaTarget
from .gcp_cloud_run import CloudRunOptions, CloudRunTarget
from .local import LocalOptions, LocalTarget

__all__ = [
    "CloudRunOptions",
    "CloudRunTarget",
    "LambdaOptions",
    "LambdaTarget",
    "LocalOptions",
    "LocalTarget",
]
