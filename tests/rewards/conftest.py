"""Fixtures for the built-in rewards: the bubblewrap gate and a fake OpenAI-compatible judge."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ..conftest import require_integration


@pytest.fixture
def needs_bwrap() -> None:
    require_integration("bwrap")


class FakeJudge:
    """A real HTTP server on 127.0.0.1 speaking /v1/chat/completions.

    ``replies`` is a queue of (status, body or content, headers): a str body becomes the
    assistant content of a 200 completion; requests are recorded for assertions.
    """

    def __init__(self) -> None:
        self.replies: list[tuple[int, Any, dict[str, str]]] = []
        self.requests: list[dict[str, Any]] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                judge.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("authorization")}
                )
                status, payload, headers = (
                    judge.replies.pop(0)
                    if judge.replies
                    else (500, {"error": "no reply queued"}, {})
                )
                if status == 200 and isinstance(payload, str):
                    payload = {"choices": [{"message": {"role": "assistant", "content": payload}}]}
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reply(self, content: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.replies.append((status, content, headers or {}))


@pytest.fixture
def fake_judge() -> Iterator[FakeJudge]:
    judge = FakeJudge()
    judge.thread.start()
    try:
        yield judge
    finally:
        judge.server.shutdown()
        judge.server.server_close()
