"""Package names imported on first use.

Importing one corner of ``reward_kit.deploy`` must not build every target's options model:
the Lambda bundle's handler (``artifacts.lambda_handler``) runs in Lambda's init phase, where
each millisecond is paid at every cold start, and ``rk`` lists the target names on start-up.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where`` maps each name to its module.

    >>> getattr_ = lazy_exports("reward_kit.deploy", {"CONFIG_FILE": "._config"})
    >>> getattr_("CONFIG_FILE")
    'reward-kit.toml'
    """

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        vars(sys.modules[package])[name] = value  # the next lookup is a plain attribute
        return value

    return __getattr__
