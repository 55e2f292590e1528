"""reward-kit: author, evaluate, serve and deploy reward functions for RL fine-tuning.

>>> from reward_kit import reward_function
>>> @reward_function
... def exact_match(messages, ground_truth=None):
...     return messages[-1].text.strip() == ground_truth
>>> exact_match([{"role": "assistant", "content": " 4"}], ground_truth="4").score
1.0
"""

# Upstream's module path reward_kit.reward_function is imported first, so that the decorator
# bound next is what the name means on the package (importing a submodule later does not
# rebind it). reward_kit.RewardFunction stays the decorator's class: docs/compat.md.
from . import reward_function as _upstream  # noqa: F401
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    EvaluationError,
    EvaluationTimeout,
    EvaluatorUnavailable,
    FunctionError,
    FunctionRequired,
    GenerationError,
    InvalidRequest,
    InvalidResponse,
    LoadError,
    MalformedJSON,
    MissingDependency,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    RequestRejected,
    RewardKitError,
    SessionEnded,
    SessionGone,
    UnknownEnvironment,
    UnknownFunction,
    UnknownSession,
    WorkerCrashed,
)
from ._function import RewardFunction, reward_function
from ._loader import load_functions
from ._models import EvaluateResult, FunctionCall, Message, MetricResult, StepOutput, ToolCall
from ._version import __version__

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "EvaluateResult",
    "EvaluationError",
    "EvaluationTimeout",
    "EvaluatorUnavailable",
    "FunctionCall",
    "FunctionError",
    "FunctionRequired",
    "GenerationError",
    "InvalidRequest",
    "InvalidResponse",
    "LoadError",
    "MalformedJSON",
    "Message",
    "MetricResult",
    "MissingDependency",
    "Overloaded",
    "PayloadTooLarge",
    "PermissionDenied",
    "RequestRejected",
    "RewardFunction",
    "RewardKitError",
    "SessionEnded",
    "SessionGone",
    "StepOutput",
    "ToolCall",
    "UnknownEnvironment",
    "UnknownFunction",
    "UnknownSession",
    "WorkerCrashed",
    "__version__",
    "load_functions",
    "reward_function",
    "run",
]


def __getattr__(name: str) -> object:
    # ``reward_kit.run(...)`` (docs/run.md) without importing the run package, and what it
    # imports, on ``import reward_kit``: the package is a callable module (run/__init__.py).
    if name == "run":
        import importlib

        return importlib.import_module(".run", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
