"""Which ``Host`` an evaluator answers: the defence against DNS rebinding.

A web page can make a browser send requests to ``127.0.0.1``; the same-origin policy keeps it
from reading the answers, unless the page's own name is made to resolve to ``127.0.0.1``
(DNS rebinding). Then the browser sends that name as ``Host``. A server without auth must
therefore answer only Hosts that are its own: loopback names by default, plus those the
operator lists (``--allowed-hosts``). With auth, a browser cannot present the credential (mTLS
aside, which the JSON-only bodies cover), so any Host is answered unless the operator lists
some.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import RequestRejected
from ._routes import error_response

__all__ = ["HostMiddleware", "HostPolicy"]

_LOOPBACK = frozenset({"localhost", "[::1]"})
# GET /health stays open, as with auth: probes address the server by IP or container name.
_OPEN = frozenset({("GET", "/health"), ("HEAD", "/health")})


class HostPolicy:
    """The Hosts (names, ``*.suffix`` patterns) a server answers, loopback ones always.

    >>> policy = HostPolicy(["rk.example.org", "*.internal"])
    >>> [policy.allows(h) for h in (b"localhost:8000", b"a.internal", b"evil.example")]
    [True, True, False]
    """

    # Host values seen, with the verdict: a client sends the same one on every request.
    _CACHE_SIZE = 1024

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        names = {_normal(p) for p in patterns}
        self.any = "*" in names
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self.names = frozenset(n for n in names if not n.startswith("*"))
        self._seen: dict[bytes, bool] = {}

    def allows(self, host: bytes) -> bool:
        verdict = self._seen.get(host)
        if verdict is None:
            name = _hostname(host)
            verdict = name is not None and (self.any or self._match(name))
            if len(self._seen) >= self._CACHE_SIZE:
                self._seen.clear()
            self._seen[host] = verdict
        return verdict

    def _match(self, name: str) -> bool:
        return (
            _is_loopback(name)
            or name in self.names
            or any(name.endswith(suffix) for suffix in self.suffixes)
        )


class HostMiddleware:
    """Refuses a request whose ``Host`` the policy does not allow: 421, or 400 when the
    header is missing, repeated or malformed; the message names the Host."""

    def __init__(self, app: ASGIApp, *, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or (
            (scope.get("method"), scope["path"]) in _OPEN
        ):
            await self.app(scope, receive, send)
            return
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        if len(hosts) == 1 and self.policy.allows(hosts[0]):
            await self.app(scope, receive, send)
            return
        error = _refusal(hosts)
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await receive()
            await send({"type": "websocket.close", "code": 1008, "reason": error.message[:120]})
            return
        await error_response(error)(scope, receive, send)


def _refusal(hosts: list[bytes]) -> RequestRejected:
    if not hosts:
        return RequestRejected("the request has no Host header", code="invalid_host")
    if len(hosts) > 1:
        return RequestRejected("the request has several Host headers", code="invalid_host")
    shown = repr(hosts[0].decode("latin-1")[:100])
    if _hostname(hosts[0]) is None:
        return RequestRejected(f"Host {shown} is not a host name", code="invalid_host")
    return RequestRejected(
        f"Host {shown} is not served here: this evaluator answers loopback names (localhost, "
        "127.0.0.1, [::1]) and those given with --allowed-hosts (RK_ALLOWED_HOSTS), which "
        "protects it from web pages (DNS rebinding)",
        code="invalid_host",
        status_code=421,
    )


def _hostname(host: bytes) -> str | None:
    """The lower-case name of a Host value without its port; None when it is malformed."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):
        end = text.find("]")
        name, port = text[: end + 1], text[end + 1 :]
        if end < 0:
            return None
    else:
        name, colon, port = text.partition(":")
        port = colon + port
    if port and not (port.startswith(":") and port[1:].isdigit()):
        return None
    name = _normal(name)
    if not name or any(c in name for c in "/\\@ \t,"):
        return None
    return name


def _normal(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    if ":" in name and not name.startswith("["):
        return f"[{name}]"  # a bare IPv6 address in --allowed-hosts
    return name


def _is_loopback(name: str) -> bool:
    if name in _LOOPBACK or name.endswith(".localhost"):
        return True
    if not name[:1].isdigit():
        return False
    try:
        return ipaddress.IPv4Address(name).is_loopback
    except ValueError:
        return False
