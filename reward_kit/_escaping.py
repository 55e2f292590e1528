"""One line of text for a log: what the server and its workers write is never more than that.

A request path like ``/evaluate%0a2026-01-01 ... auth ok``, or a model response a reward
prints, would otherwise write a forged log line of its own.
"""

from __future__ import annotations

__all__ = ["escape"]

# Control characters (C0, DEL, C1) and the Unicode line separators, as visible escapes.
_ESCAPES = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))},
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def escape(text: str) -> str:
    r"""``text`` on one line: control characters and line separators written as escapes.

    >>> escape("/evaluate\n2026-01-01 INFO auth ok")
    '/evaluate\\n2026-01-01 INFO auth ok'
    """
    return text if text.isprintable() else text.translate(_ESCAPES)
