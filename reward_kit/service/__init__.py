"""The evaluator service: ``create_app`` for ASGI servers, ``run_server`` to serve it the way
``rk serve`` does, ``ServeSettings`` for its knobs.

``import reward_kit.service`` itself is cheap; FastAPI and uvicorn are imported when
``create_app``, ``run_server`` or ``configure_logging`` is used, so the execution engine is
usable (``rk eval``) without the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._setting import Setting
from ._settings import ServeSettings

if TYPE_CHECKING:
    from ._app import create_app
    from ._observability import configure_logging
    from ._server import run_server

__all__ = [
    "ServeSettings",
    "Setting",
    "configure_logging",
    "create_app",
    "run_server",
]

_LAZY = {
    "create_app": "._app",
    "configure_logging": "._observability",
    "run_server": "._server",
}
# The engine's names, served here (with a warning) for code written before reward_kit.engine.
_MOVED = ("Call", "Engine", "Item", "Outcome")
# These need the web stack (the [server] extra).
_NEED_SERVER = ("create_app", "configure_logging", "run_server")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import warnings

        from .. import engine

        warnings.warn(
            f"reward_kit.service.{name} moved to reward_kit.engine.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(engine, name)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in _NEED_SERVER:
        from .._extras import require

        require("fastapi", extra="server", feature="the evaluator server")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
