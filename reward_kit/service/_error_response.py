"""Every error the server answers, rendered by one function: the same JSON body, the same
``Retry-After`` rounding, the same headers, whether it leaves through Starlette, raw ASGI (the
auth and request-context middleware) or the connection guards (raw HTTP bytes).
"""

from __future__ import annotations

import http
import math

import orjson

from .._errors import RewardKitError

__all__ = ["error_head", "render_error"]

Headers = list[tuple[bytes, bytes]]

# Answered before the body was read (or while it was): the rest of it may still be on the
# way, so the connection is closed rather than kept for another request.
_CLOSE_AFTER = frozenset({408, 413, 415})


def render_error(error: RewardKitError, *, close: bool = False) -> tuple[int, Headers, bytes]:
    """``(status, headers, body)`` of the JSON answer for ``error``.

    >>> from reward_kit._errors import Overloaded
    >>> status, headers, body = render_error(Overloaded("busy", retry_after=0.2))
    >>> status, dict(headers)[b"retry-after"], body
    (429, b'1', b'{"error":{"code":"overloaded","message":"busy"}}')
    """
    body = orjson.dumps(error.to_payload())
    headers: Headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if error.retry_after is not None:
        # Whole seconds (RFC 9110), never 0: a client would retry at once.
        headers.append((b"retry-after", str(max(1, math.ceil(error.retry_after))).encode()))
    if error.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="reward-kit"'))
    if close or error.status in _CLOSE_AFTER:
        headers.append((b"connection", b"close"))
    return error.status, headers, body


def error_head(error: RewardKitError, *, close: bool = True) -> bytes:
    """The whole HTTP/1.1 response for ``error``, for code below the ASGI app."""
    status, headers, body = render_error(error, close=close)
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}".encode("latin-1")]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
