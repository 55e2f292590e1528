"""The evaluator service: ``create_app`` for ASGI servers, ``ServeSettings`` for its knobs.

``import reward_kit.service`` itself is cheap; FastAPI is imported when ``create_app`` is used,
so the execution engine is usable (``rk eval``) without the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._settings import ServeSettings

if TYPE_CHECKING:
    from ._app import create_app
    from ._engine import Call, Engine
    from ._outcome import Item, Outcome

__all__ = ["Call", "Engine", "Item", "Outcome", "ServeSettings", "create_app"]

_LAZY = {
    "create_app": "._app",
    "Engine": "._engine",
    "Call": "._engine",
    "Item": "._outcome",
    "Outcome": "._outcome",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "create_app":
        from .._extras import require

        require("fastapi", extra="server", feature="the evaluator server")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
