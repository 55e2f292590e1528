"""The thin client side of reward-kit (base install only: httpx + pydantic)."""

from ._async_client import AsyncEvaluatorClient
from ._async_env_client import AsyncEnvClient
from ._client import EvaluatorClient
from ._core import make_item
from ._env_client import EnvClient
from ._results import ItemError, ItemResult
from .auth import (
    ApiKey,
    AwsIamToken,
    AwsSigV4,
    Combined,
    Credential,
    GoogleIdToken,
    MutualTLS,
    NoAuth,
    from_profile,
)
from .trl import AsyncTRLReward, TRLReward, trl_reward, trl_reward_sync

__all__ = [
    "ApiKey",
    "AsyncEnvClient",
    "AsyncEvaluatorClient",
    "AsyncTRLReward",
    "AwsIamToken",
    "AwsSigV4",
    "Combined",
    "Credential",
    "EnvClient",
    "EvaluatorClient",
    "GoogleIdToken",
    "ItemError",
    "ItemResult",
    "MutualTLS",
    "NoAuth",
    "TRLReward",
    "from_profile",
    "make_item",
    "trl_reward",
    "trl_reward_sync",
]


def __getattr__(name: str) -> object:
    # SyncTRLReward became TRLReward (the blocking one), and the async one AsyncTRLReward, as
    # EvaluatorClient / AsyncEvaluatorClient are named.
    if name == "SyncTRLReward":
        import warnings

        warnings.warn(
            "reward_kit.sdk.SyncTRLReward is now TRLReward (and the async one AsyncTRLReward)",
            DeprecationWarning,
            stacklevel=2,
        )
        return TRLReward
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
