"""The API key a deploy makes: shown to the user once, only its hash leaves this machine."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["new_api_key"]


def new_api_key() -> tuple[str, str]:
    """A fresh client key and the server's ``deploy sha256:HEX`` line for it.

    >>> key, line = new_api_key()
    >>> line.startswith("deploy sha256:") and key.startswith("rk_")
    True
    """
    key = "rk_" + secrets.token_urlsafe(32)
    return key, "deploy sha256:" + hashlib.sha256(key.encode()).hexdigest()
