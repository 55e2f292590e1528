"""Serving the viewer: bind first (so port 0 is a real free port and the URL printed is the
one that answers), then hand the socket to uvicorn."""

from __future__ import annotations

import gc
import ipaddress
import socket
import webbrowser
from collections.abc import Callable, Sequence

from .._errors import ConfigurationError
from .._extras import require
from ._app import create_app
from ._load import Run

__all__ = ["is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the viewer on this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost")
    (True, True, True)
    >>> is_loopback("0.0.0.0"), is_loopback("192.168.1.4")
    (False, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    runs: Sequence[Run],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_remote: bool = False,
    open_browser: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve ``runs`` until interrupted. A non-loopback ``host`` is refused unless
    ``allow_remote``: results hold prompts, answers and reward code output, and the viewer
    has no authentication."""
    if not is_loopback(host) and not allow_remote:
        raise ConfigurationError(
            f"refusing to serve runs on {host}: rk view has no authentication, so anyone who "
            "can reach it could read them. Bind a loopback address, or pass --allow-remote "
            "if that is what you want."
        )
    uvicorn = require("uvicorn", extra="view", feature="rk view")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening before the URL is printed: a client that reads it and connects at once
        # waits in the backlog instead of being refused while uvicorn starts.
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise ConfigurationError(f"cannot bind {host}:{port}: {error.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{bound}/"
    app = create_app(runs, any_host=not is_loopback(host))
    # The runs live until the process ends: out of the collector's sight, a full collection
    # no longer walks a 100,000-sample run's millions of objects (seconds) while a sort runs.
    gc.freeze()
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    announce(f"rk view: {url}  (Ctrl+C to stop)")
    if open_browser:
        webbrowser.open(url)
    server.run(sockets=[sock])
