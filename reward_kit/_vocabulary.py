"""The words every part of reward-kit shares: item statuses and their errors, auth modes,
reserved request keys, default deadlines. Defined once here; the server, the engine, the SDK
and the CLI import them.

>>> ERROR_FOR_STATUS["timeout"].code, ERROR_FOR_STATUS["timeout"].status_code
('timeout', 504)
"""

from __future__ import annotations

from typing import Literal, get_args

from ._errors import (
    EvaluationTimeout,
    FunctionError,
    InvalidRequest,
    RewardKitError,
    WorkerCrashed,
)

__all__ = [
    "AUTH_MODES",
    "DEFAULT_AUTH",
    "DEFAULT_DEADLINE",
    "DEFAULT_REQUEST_TIMEOUT",
    "ERROR_FOR_STATUS",
    "FAILED_STATUSES",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "RESERVED_ITEM_KEYS",
    "STATUSES",
    "AuthMode",
    "Status",
]

# What became of one item. Only "ok" carries a score; every other status is an error and is
# never counted as a score of 0.
Status = Literal["ok", "error", "timeout", "crashed", "invalid"]
STATUSES: tuple[Status, ...] = get_args(Status)
FAILED_STATUSES: tuple[Status, ...] = tuple(s for s in STATUSES if s != "ok")

# The exception each failed status is, on /evaluate and in the SDK: its ``code`` is the wire
# code of a failed batch item (``{"status": "timeout", "error": {"code": "timeout"}}``).
ERROR_FOR_STATUS: dict[Status, type[RewardKitError]] = {
    "error": FunctionError,
    "timeout": EvaluationTimeout,
    "crashed": WorkerCrashed,
    "invalid": InvalidRequest,
}

# Keys of a request item that are not keyword arguments of the reward function.
RESERVED_ITEM_KEYS = frozenset({"messages", "ground_truth", "tools", "kwargs", "function"})

AuthMode = Literal["api-key", "google-iam", "aws-iam", "mtls"]
AUTH_MODES: tuple[AuthMode, ...] = get_args(AuthMode)
# What a deploy uses when it is not told (a key in the cloud's secret store).
DEFAULT_AUTH: AuthMode = "api-key"

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMATS = ("text", "json")

# Seconds one item may run when neither the function nor the request sets a deadline
# (rk-serve, rk eval, composite rewards).
DEFAULT_DEADLINE = 30.0
# Seconds the SDK waits for one HTTP response: a batch runs many items, one after another per
# worker, so it is longer than one item's deadline.
DEFAULT_REQUEST_TIMEOUT = 120.0
