"""``--target local``: the evaluator image as a container on this machine's Docker or Podman."""

from ._options import LocalOptions
from ._target import LocalTarget

__all__ = ["LocalOptions", "LocalTarget"]
