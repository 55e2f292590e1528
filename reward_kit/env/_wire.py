"""Frames between the server and a session process: a 4-byte length, then compact JSON.

JSON, not pickle: a session process runs tools on model-chosen arguments, and nothing it sends
may make the server execute code. A frame goes out in one write (length and body together) and
the session process reads through a buffer, so a request costs one syscall each way on each
side; orjson (the server extra) encodes and decodes when it is there, ``json`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from typing import Any, Protocol

try:
    import orjson
except ImportError:  # reward_kit.env without the server extra: authoring only
    orjson = None  # type: ignore[assignment]

__all__ = [
    "MAX_FRAME",
    "FrameError",
    "decode",
    "encode",
    "read_frame",
    "recv_frame",
    "send_frame",
    "write_frame",
]

_HEADER = struct.Struct(">I")
# One tool output or trajectory; far above any sane one, low enough to refuse a runaway tool.
MAX_FRAME = 64 * 1024 * 1024
# orjson's keys may be ints (as json's are), and values it cannot encode become their repr.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS if orjson is not None else 0


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes | None: ...


class FrameError(ConnectionError):
    """The other side closed the connection or sent something that is not a frame."""


def encode(message: Any) -> bytes:
    """One frame: the length prefix and the JSON body, as one buffer."""
    body = None
    if orjson is not None:
        # An int over 64 bits, a recursion too deep...: json says it.
        with contextlib.suppress(TypeError):
            body = orjson.dumps(message, default=repr, option=_ORJSON_OPTIONS)
    if body is None:
        body = json.dumps(message, separators=(",", ":"), default=repr).encode()
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes is over the {MAX_FRAME}-byte limit")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> Any:
    """A frame's body as Python values."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:  # what only json writes (NaN, ints over 64 bits)
            pass
    return json.loads(body)


def send_frame(sock: socket.socket, message: Any) -> None:
    """Send one frame on a blocking socket."""
    sock.sendall(encode(message))


def recv_frame(stream: _Readable) -> Any:
    """Receive one frame from a buffered blocking stream (``sock.makefile("rb")``: a frame
    the other side wrote at once is then one read); FrameError on EOF."""
    (size,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes is over the {MAX_FRAME}-byte limit")
    return decode(_read_exactly(stream, size))


def _read_exactly(stream: _Readable, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise FrameError("connection closed")
    return data


async def write_frame(writer: asyncio.StreamWriter, message: Any) -> None:
    """Send one frame on an asyncio stream."""
    writer.write(encode(message))
    await writer.drain()


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """Receive one frame from an asyncio stream; FrameError on EOF."""
    try:
        (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        if size > MAX_FRAME:
            raise FrameError(f"frame of {size} bytes is over the {MAX_FRAME}-byte limit")
        return decode(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        raise FrameError("the session process closed its connection") from error
