"""HTTP-side request checks: the body's content type, which function, and ``?timeout=``.

Item validation itself is the engine's (``reward_kit.engine.parse_item``): ``rk eval`` uses it
for its rows too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import FunctionRequired, InvalidRequest, RequestRejected, UnknownFunction
from .._function import RewardFunction

__all__ = ["check_content_type", "parse_timeout", "pick_function"]


def check_content_type(value: bytes | None) -> None:
    """Refuse (415) a body not declared JSON: ``application/json`` or ``application/*+json``.

    Browsers send ``text/plain`` and form bodies cross-origin without asking (no CORS
    preflight), so accepting them would let any web page a developer opens run the rewards of
    a server on their machine.
    """
    if value == b"application/json":
        return
    media, _, parameters = (value or b"").decode("latin-1").partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        got = f"Content-Type {media[:100]!r}" if media else "no Content-Type"
        raise RequestRejected(
            f"the request has {got}; send the JSON body with Content-Type: application/json",
            code="unsupported_media_type",
            status_code=415,
        )
    for parameter in parameters.split(";"):
        name, _, charset = parameter.partition("=")
        charset = charset.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise RequestRejected(
                f"the request body is declared charset={charset[:40]!r}; JSON is UTF-8: send "
                "Content-Type: application/json (or application/json; charset=utf-8)",
                code="unsupported_media_type",
                status_code=415,
            )


def pick_function(
    functions: Mapping[str, RewardFunction[Any]], *names: str | None
) -> RewardFunction[Any]:
    """The function named by the path and/or the body (they must agree), or the only one."""
    given = [n for n in names if n is not None]
    if len(set(given)) > 1:
        raise InvalidRequest(
            f"function: the request names both {given[0]!r} and {given[1]!r}; name one"
        )
    if given:
        fn = functions.get(given[0])
        if fn is None:
            raise UnknownFunction(
                f"no reward function named {given[0]!r}; served: {', '.join(sorted(functions))}"
            )
        return fn
    if len(functions) == 1:
        return next(iter(functions.values()))
    raise FunctionRequired(
        f"{len(functions)} reward functions are served ({', '.join(sorted(functions))}); name "
        "one in the path (/evaluate/NAME) or in the 'function' field"
    )


def parse_timeout(requested: str | None, *, maximum: float) -> float | None:
    """A per-request ``?timeout=`` override, checked against the server maximum."""
    if requested is None:
        return None
    try:
        value = float(requested)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise InvalidRequest(f"timeout: expected a positive number of seconds, got {requested!r}")
    if value > maximum:
        raise InvalidRequest(
            f"timeout: {value:g}s is above this server's maximum of {maximum:g}s (--max-timeout)"
        )
    return value
