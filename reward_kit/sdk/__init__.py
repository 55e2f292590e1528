"""The thin client side of reward-kit (base install only: httpx + pydantic)."""

from ._async_client import AsyncEvaluatorClient
from ._client import EvaluatorClient
from ._core import make_item
from ._results import ItemError, ItemResult
from ._trl import SyncTRLReward, TRLReward, trl_reward, trl_reward_sync
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

__all__ = [
    "ApiKey",
    "AsyncEvaluatorClient",
    "AwsIamToken",
    "AwsSigV4",
    "Combined",
    "Credential",
    "EvaluatorClient",
    "GoogleIdToken",
    "ItemError",
    "ItemResult",
    "MutualTLS",
    "NoAuth",
    "SyncTRLReward",
    "TRLReward",
    "from_profile",
    "make_item",
    "trl_reward",
    "trl_reward_sync",
]
