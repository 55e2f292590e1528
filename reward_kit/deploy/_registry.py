"""The deploy targets by name, and how tests put fakes in their place.

>>> sorted(TARGETS)
['aws-lambda', 'gcp-cloud-run', 'local']
"""

from __future__ import annotations

from collections.abc import Callable

from .._errors import ConfigurationError
from ._options import TargetOptions
from ._target import Target
from .targets import CloudRunTarget, LambdaTarget, LocalTarget

__all__ = ["FACTORIES", "TARGETS", "get_target", "option_names", "options_model"]

# A target module imports no cloud SDK until a deploy needs it, so listing them is cheap.
TARGETS: dict[str, Callable[[], Target]] = {
    LocalTarget.name: LocalTarget,
    CloudRunTarget.name: CloudRunTarget,
    LambdaTarget.name: LambdaTarget,
}
# Tests replace a target's construction here (e.g. with fake endpoints).
FACTORIES: dict[str, Callable[[], Target]] = {}
_MODELS: dict[str, type[TargetOptions]] = {
    LocalTarget.name: LocalTarget.options_model,
    CloudRunTarget.name: CloudRunTarget.options_model,
    LambdaTarget.name: LambdaTarget.options_model,
}


def _known(name: str) -> None:
    if name not in TARGETS:
        raise ConfigurationError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")


def get_target(name: str) -> Target:
    """The target called ``name``, with its real clients (unless a test put a factory here)."""
    _known(name)
    return (FACTORIES.get(name) or TARGETS[name])()


def options_model(name: str) -> type[TargetOptions]:
    """The options model of the target called ``name``.

    >>> options_model("local").__name__
    'LocalOptions'
    """
    _known(name)
    return _MODELS[name]


def option_names() -> set[str]:
    """Every option some target takes."""
    return {key for model in _MODELS.values() for key in model.model_fields}
