"""A real ``rk-serve`` whose output is kept, and raw sockets for clients that misbehave."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..conftest import free_port, wait_for_health

HERE = Path(__file__).resolve().parent
REWARDS = str(HERE.parent / "fixtures" / "service_rewards.py")
HTTP_REWARDS = str(HERE / "http_rewards.py")
MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
ITEM = {"messages": MESSAGES, "ground_truth": "4"}


class Clients:
    """Raw connections to a port, for clients that misbehave; ``close()`` closes them all."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []

    def connect(self, data: bytes = b"", *, receive_buffer: int = 0) -> socket.socket:
        """A connection that has sent ``data`` (with a small receive buffer, if given)."""
        sock = socket.socket()
        self.sockets.append(sock)
        sock.settimeout(10)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect(("127.0.0.1", self.port))
        if data:
            sock.sendall(data)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clients = Clients(self.port)
        self.connect = self.clients.connect

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def serving(
    *args: str, env: dict[str, str] | None = None, nofile: int | None = None, port: int = 0
) -> Iterator[Server]:
    """``rk-serve ARGS`` on a loopback port; its output is collected (a thread drains it, so
    a chatty server never blocks on a full pipe). ``nofile`` caps its open files."""
    port = port or free_port()
    command = [str(Path(sys.executable).parent / "rk-serve"), *args, "--port", str(port)]
    limit: Callable[[], None] | None = None
    if nofile is not None:
        limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))  # noqa: E731
    process = subprocess.Popen(
        command, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=limit,
    )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", port, process)
    assert process.stdout is not None
    drain = threading.Thread(target=lambda: server.lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    drain.start()
    try:
        wait_for_health(server.url, process)
        yield server
    finally:
        server.clients.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            drain.join(timeout=10)
            process.stdout.close()


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """A raw HTTP/1.1 request; header names are given with underscores for dashes."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
