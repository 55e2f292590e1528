"""An instantly answering OpenAI-compatible endpoint for the rk run benchmark.

A bare asyncio protocol (no framework) so that the mock, not the client under test, is never
the bottleneck: every POST gets the same chat completion, ``GET /v1/models`` lists one model,
and ``GET /stats`` returns how many completions were served (the benchmark checks that a cached
run made none).

    python bench/apps/openai_mock.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 0,
        "model": "mock",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The answer is 42.\n#### 42"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28},
    }
).encode()
MODELS = json.dumps({"object": "list", "data": [{"id": "mock", "object": "model"}]}).encode()


def _response(body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_COMPLETION_RESPONSE = _response(COMPLETION)
_MODELS_RESPONSE = _response(MODELS)


class _Mock(asyncio.Protocol):
    served = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            if head.startswith("POST"):
                _Mock.served += 1
                self.transport.write(_COMPLETION_RESPONSE)
            elif head.startswith("GET /stats"):
                self.transport.write(_response(json.dumps({"served": _Mock.served}).encode()))
            else:
                self.transport.write(_MODELS_RESPONSE)


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Mock, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
