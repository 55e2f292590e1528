"""Clients for a reward-kit server's multi-step environments (``/envs``): open a session, step
it with the model's tool calls, evaluate the trajectory, close it. See docs/environments.md."""

from ._async_env_client import AsyncEnvClient, AsyncEnvSession
from ._env_client import EnvClient, EnvSession
from ._env_core import SessionEvaluation, SessionInfo, StepResult, ToolCallResult

__all__ = [
    "AsyncEnvClient",
    "AsyncEnvSession",
    "EnvClient",
    "EnvSession",
    "SessionEvaluation",
    "SessionInfo",
    "StepResult",
    "ToolCallResult",
]
