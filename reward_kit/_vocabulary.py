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
    "ENV_SESSION_STATUSES",
    "ENV_VERIFY_MODES",
    "ERROR_FOR_STATUS",
    "FAILED_METRIC",
    "FAILED_STATUSES",
    "FATAL_GENERATION_STATUSES",
    "GENERATION_STATUSES",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "RESERVED_ITEM_KEYS",
    "RETRIED_GENERATION_STATUSES",
    "RUN_REWARD_STATUSES",
    "STATUSES",
    "AuthMode",
    "GenerationStatus",
    "RunRewardStatus",
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

# rk run: what became of one generation request to a model endpoint (docs/run.md). Only "ok"
# carries a reply; a sample whose generation failed keeps its status and is never scored.
GenerationStatus = Literal[
    "ok",
    "auth",
    "not_found",
    "rate_limit",
    "bad_request",
    "context_length",
    "server",
    "timeout",
    "connection",
    "invalid_response",
    "env_session",  # rk run --env: the sample's environment session could not be opened
]
GENERATION_STATUSES: tuple[GenerationStatus, ...] = get_args(GenerationStatus)
# Worth another attempt (with backoff, Retry-After as a floor).
RETRIED_GENERATION_STATUSES: tuple[GenerationStatus, ...] = (
    "rate_limit",
    "server",
    "timeout",
    "connection",
    "invalid_response",
)
# Every other request would fail the same way (a wrong key, model or URL): the run stops.
FATAL_GENERATION_STATUSES: tuple[GenerationStatus, ...] = ("auth", "not_found")
# A reward's status on one sample of rk run: the item's status, or "skipped" when the
# sample's generation failed and there was nothing to score (never a score of 0).
RunRewardStatus = Literal["ok", "error", "timeout", "crashed", "invalid", "skipped"]
RUN_REWARD_STATUSES: tuple[RunRewardStatus, ...] = get_args(RunRewardStatus)

# The metric a trainer adapter adds when the operator chose a fallback reward for failed
# samples (verl's on_error, OpenRLHF's --openrlhf-on-error): 1.0 where the reward is that
# fallback, 0.0 elsewhere, so a run's wandb shows how much of it trained on fallbacks.
FAILED_METRIC = "reward_kit_failed"

# Keys of a request item that are not keyword arguments of the reward function.
RESERVED_ITEM_KEYS = frozenset({"messages", "ground_truth", "tools", "kwargs", "function"})

AuthMode = Literal["api-key", "google-iam", "aws-iam", "mtls"]
AUTH_MODES: tuple[AuthMode, ...] = get_args(AuthMode)
# What a deploy uses when it is not told (a key in the cloud's secret store).
DEFAULT_AUTH: AuthMode = "api-key"

# Multi-step environments (docs/environments.md): what --env-verify does with a transcript
# that differs from the session's ledger, and the states a session goes through.
ENV_VERIFY_MODES = ("report", "enforce", "off")
ENV_SESSION_STATUSES = ("active", "done", "truncated", "failed")

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMATS = ("text", "json")

# Seconds one item may run when neither the function nor the request sets a deadline
# (rk-serve, rk eval, composite rewards).
DEFAULT_DEADLINE = 30.0
# Seconds the SDK waits for one HTTP response: a batch runs many items, one after another per
# worker, so it is longer than one item's deadline.
DEFAULT_REQUEST_TIMEOUT = 120.0
