"""Reading request bodies within a deadline, for the price of a dict entry per request.

A client that sends its headers and then its body slowly, or not at all, must not hold the
handler forever. A timer per read (``asyncio.timeout``) costs about 2-5 us, several percent of
a trivial ``/evaluate``; instead each read notes its deadline in a dict, and one timer, running
only while reads are in progress, checks them twice a second and cancels a read that is past
its deadline. That read then raises a 408.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive

from .._errors import PayloadTooLarge, RequestRejected

__all__ = ["BodyDeadlines", "too_large"]

_TICK = 0.5


class BodyDeadlines:
    """Reads bodies (``await deadlines.read(receive, limit)``) that must end within ``timeout``.

    Only ever used from the event loop's thread, so plain dicts need no lock.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._reads: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        # The loop the checking timer runs on, None when it is not running. (An app can outlive
        # a loop: a test client makes one per session.)
        self._ticking: asyncio.AbstractEventLoop | None = None

    async def read(self, receive: Receive, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes (else 413), within the deadline (else 408)."""
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        self._reads[task] = loop.time() + self.timeout
        if self._ticking is not loop:
            self._ticking = loop
            loop.call_later(_TICK, self._tick, loop)
        try:
            body = await _receive(receive, limit)
            if task in self._expired:
                # Cancelled just as the last chunk arrived: the cancellation is still pending
                # and lands here, not in whatever the handler awaits next.
                await asyncio.sleep(0)
            return body
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # not ours: shutdown
            self._expired.discard(task)
            if hasattr(task, "uncancel"):  # Python 3.11+: keep the task's cancel count right
                task.uncancel()
            raise RequestRejected(
                f"the request body did not arrive within {self.timeout:g}s (--body-timeout)",
                code="request_timeout",
                status_code=408,
            ) from None
        finally:
            self._reads.pop(task, None)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._ticking is not loop:
            return  # replaced by a timer on another loop
        now = loop.time()
        for task, deadline in list(self._reads.items()):
            if now >= deadline and task.get_loop() is loop:
                del self._reads[task]
                self._expired.add(task)
                task.cancel()
        if self._reads:
            loop.call_later(_TICK, self._tick, loop)
        else:
            self._ticking = None


async def _receive(receive: Receive, limit: int) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False) and message["type"] == "http.request":
        # The usual case: the whole body came with the headers.
        if len(body) > limit:
            raise too_large(len(body), limit)
        return body
    chunks, size = [body], len(body)
    while message["type"] == "http.request" and message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
    if message["type"] != "http.request":
        raise RequestRejected(
            "the client closed the connection before sending the whole body",
            code="client_disconnected",
        )
    return b"".join(chunks)


def too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is {size} bytes or more; this server accepts at most {limit} "
        "(--max-body-bytes); split the batch"
    )
