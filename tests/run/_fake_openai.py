"""A scriptable OpenAI-compatible chat-completions server over real HTTP on loopback.

A small HTTP/1.1 server on asyncio in a thread of its own (not uvicorn: it must be able to
reset a connection, hang, or answer bytes no framework would send). Each request takes the
next scripted :class:`Action`, else asks ``responder(body)``, else echoes. It records every
request, so tests assert on request counts, never on wall time.

    server.script(status(429, retry_after=0), reset(), hang())   # the next three requests
    server.responder = lambda body: "42"                           # the rest
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Action",
    "FakeOpenAI",
    "context_length",
    "echo",
    "empty",
    "hang",
    "malformed",
    "reply",
    "reset",
    "status",
    "tool_call",
]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


@dataclass
class Action:
    """What the server does with one request."""

    kind: str = "reply"  # reply | status | reset | hang | malformed
    content: str | None = None
    finish_reason: str = "stop"
    code: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    tool_calls: list[dict[str, Any]] | None = None


def reply(content: str | None = None, *, finish_reason: str = "stop", delay: float = 0.0) -> Action:
    return Action("reply", content=content, finish_reason=finish_reason, delay=delay)


def tool_call(name: str, arguments: dict[str, Any], *, call_id: str = "call_0") -> Action:
    """A reply that calls one tool (content empty, finish_reason ``tool_calls``)."""
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return Action("reply", content="", finish_reason="tool_calls", tool_calls=[call])


def empty() -> Action:
    return Action("reply", content="")


def status(code: int, body: Any = None, *, retry_after: float | None = None) -> Action:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    if body is None:
        body = {"error": {"message": f"scripted {code}", "type": "test"}}
    return Action("status", code=code, body=body, headers=headers)


def context_length() -> Action:
    return status(
        400,
        {
            "error": {
                "message": "This model's maximum context length is 4096 tokens.",
                "code": "context_length_exceeded",
            }
        },
    )


def reset() -> Action:
    return Action("reset")


def hang() -> Action:
    return Action("hang")


def malformed() -> Action:
    return Action("malformed")


def echo(body: dict[str, Any]) -> str:
    """The default reply: the last message, and the seed, so samples differ by seed."""
    last = body["messages"][-1].get("content")
    return f"echo {last} seed={body.get('seed')}"


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as server:``; ``server.url`` ends in ``/v1``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.responder: Callable[[dict[str, Any]], str | Action] | None = None
        self.honour_n = True
        self.delay = 0.0
        self.api_key: str | None = None
        self.usage = True
        self._script: deque[Action] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def script(self, *actions: Action) -> None:
        """The next requests (in arrival order) get these actions."""
        with self._lock:
            self._script.extend(actions)

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        if method != "POST" or path != "/v1/chat/completions":
            await _send(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        body = json.loads(raw)
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            action = self._script.popleft() if self._script else None
        authorized = headers.get("authorization") == f"Bearer {self.api_key}"
        if action is None and self.api_key is not None and not authorized:
            action = status(401, {"error": {"message": "Incorrect API key provided"}})
        if action is None and self.responder is not None:
            answer = self.responder(body)
            action = answer if isinstance(answer, Action) else reply(answer)
        if action is None:
            action = reply()  # an echo per choice
        delay = action.delay or self.delay
        if delay:
            await asyncio.sleep(delay)
        if action.kind == "reset":
            writer.transport.abort()
            return False
        if action.kind == "hang":
            await reader.read()  # until the client gives up and closes
            return False
        if action.kind == "malformed":
            await _send_raw(writer, 200, b'{"choices": [{"message": ')
            return True
        if action.kind == "status":
            await _send(writer, action.code, action.body, action.headers)
            return True
        await _send(writer, 200, self._completion(body, action))
        return True

    def _completion(self, body: dict[str, Any], action: Action) -> dict[str, Any]:
        n = int(body.get("n") or 1) if self.honour_n else 1
        choices = []
        for index in range(n):
            seeded = dict(body, seed=(body.get("seed") or 0) + index) if index else body
            content = action.content if action.content is not None else echo(seeded)
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if action.tool_calls is not None:
                message["tool_calls"] = action.tool_calls
            choices.append(
                {"index": index, "message": message, "finish_reason": action.finish_reason}
            )
        result: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": choices,
        }
        if self.usage:
            prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
            completion = sum(len(c["message"]["content"].split()) for c in choices)
            result["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return result


async def _send(
    writer: asyncio.StreamWriter, code: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    await _send_raw(writer, code, json.dumps(body).encode(), headers)


async def _send_raw(
    writer: asyncio.StreamWriter, code: int, data: bytes, headers: dict[str, str] | None = None
) -> None:
    lines = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["content-type: application/json", f"content-length: {len(data)}", "", ""]
    writer.write("\r\n".join(lines).encode("latin-1") + data)
    await writer.drain()
