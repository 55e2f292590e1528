"""Optional dependencies live behind extras; a missing one fails with the pip command to run."""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import MissingDependency

__all__ = ["require"]


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming ``reward-kit[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependency(
            f"{feature} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'reward-kit[{extra}]'"
        ) from error
