"""``rk run``: generate responses with any OpenAI-compatible endpoint, score them with reward
functions, and report (pass@k, means with prompt-clustered intervals), with caching, resume and
a manifest that reproduces the run. See docs/run.md.

``reward_kit.run`` is this package and also the function that runs: the package's module
object is callable (calling it calls :func:`run`), so both ``reward_kit.run(...)`` and
``from reward_kit.run import run`` work. (A function named ``run`` on ``reward_kit`` would be
replaced by the package the first time anything imported ``reward_kit.run.<module>``.)

>>> import reward_kit
>>> callable(reward_kit.run) and reward_kit.run.run.__name__
'run'
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ._api import RunResult, arun, build_config, run
from ._cache import GenerationCache, default_cache_path
from ._config import (
    CacheConfig,
    DataConfig,
    FieldMap,
    LimitsConfig,
    ModelConfig,
    OutputConfig,
    RewardSpec,
    RunConfig,
    ScoringConfig,
)
from ._report import render_summary

__all__ = [
    "CacheConfig",
    "DataConfig",
    "FieldMap",
    "GenerationCache",
    "LimitsConfig",
    "ModelConfig",
    "OutputConfig",
    "RewardSpec",
    "RunConfig",
    "RunResult",
    "ScoringConfig",
    "arun",
    "build_config",
    "default_cache_path",
    "render_summary",
    "run",
    "run_async",
]

run_async = arun  # the name some expect for the async twin


class _CallableModule(types.ModuleType):
    """This package's module type: ``reward_kit.run(...)`` is ``reward_kit.run.run(...)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> RunResult:
        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
