"""Credentials for calling an evaluator: pass one as ``auth=`` to the SDK clients."""

from ._credentials import ApiKey, Credential

__all__ = ["ApiKey", "Credential"]
