"""``--target aws-lambda``: the Lambda zip as a function with a function URL."""

from ._options import LambdaOptions
from ._target import LambdaTarget

__all__ = ["LambdaOptions", "LambdaTarget"]
