"""The thin client side of reward-kit (base install only: httpx + pydantic)."""

from .auth import ApiKey, Credential

__all__ = ["ApiKey", "Credential"]
