"""Slow, stalled and crowding clients against a real rk-serve: they hold no admission slot,
they are cut off at the header/body deadlines, and neither they nor idle connections can use
up the connections or file descriptors that /health and real requests need."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .http_helpers import (
    ITEM,
    MESSAGES,
    REWARDS,
    Clients,
    Server,
    read_until_closed,
    request,
    serving,
)

pytestmark = pytest.mark.slow

JSON = "application/json"
BODY = json.dumps(ITEM).encode()
# What a stalled client has sent when it stops, by kind.
STALLED = {
    "nothing": b"",
    "part of the request line": b"POST /evaluate/ec",
    "part of the headers": b"POST /evaluate/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
    "headers, no body": request("POST", "/evaluate/echo", BODY, content_type=JSON)[: -len(BODY)],
    "half the body": request("POST", "/evaluate/echo", BODY, content_type=JSON)[: -len(BODY) // 2],
    "half a batch": request(
        "POST", "/batch_evaluate/echo", b'{"items": [' + BODY + b"]}", content_type=JSON
    )[:-5],
}


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def json_error(answer: bytes) -> dict[str, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), answer
    error: dict[str, str] = json.loads(body)["error"]
    return error


def scores(url: str) -> None:
    """/health answers and an item is scored, at once (not queued behind the stalled)."""
    start = time.monotonic()
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    response = httpx.post(f"{url}/evaluate/echo", json={"messages": MESSAGES}, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["score"] == 1.0
    assert time.monotonic() - start < 2


class Trickle:
    """A client that keeps sending one byte every 0.2 s: never idle, never done."""

    def __init__(self, server: Server, start: bytes) -> None:
        self.sock = server.connect(start)
        self.closed_after: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()
        self.thread.start()

    def _run(self) -> None:
        try:
            while time.monotonic() - self.started < 30:
                self.sock.sendall(b"a")
                time.sleep(0.2)
        except OSError:
            self.closed_after = time.monotonic() - self.started


def trickles(server: Server) -> Iterator[tuple[str, Trickle]]:
    yield "headers", Trickle(server, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
    body_head = request("POST", "/evaluate/echo", content_type=JSON, content_length="100000")
    yield "body", Trickle(server, body_head)


def test_stalled_clients_hold_no_slot_and_are_cut_off_at_the_deadlines() -> None:
    args = (
        "--workers",
        "1",
        "--max-in-flight",
        "4",
        "--header-timeout",
        "2",
        "--body-timeout",
        "2",
    )
    with serving(REWARDS, *args) as server:
        stalled = [(kind, server.connect(data)) for kind, data in STALLED.items() for _ in range(6)]
        trickling = list(trickles(server))
        time.sleep(0.3)
        # 36 stalled connections, 18 of them with a request under way and more than the 4
        # admission slots: real requests are still scored at once, /health still answers.
        until = time.monotonic() + 1.2
        while time.monotonic() < until:
            scores(server.url)
        for kind, sock in stalled:
            answer = read_until_closed(sock, timeout=8)
            if kind == "nothing":
                assert answer == b"", answer  # nothing was asked: nothing is answered
                continue
            assert status_of(answer) == 408, (kind, answer)
            error = json_error(answer)
            assert error["code"] == "request_timeout", (kind, error)
            deadline = "--body-timeout" if "body" in kind or "batch" in kind else "--header-timeout"
            assert deadline in error["message"], (kind, error)
        for kind, trickle in trickling:
            trickle.thread.join(timeout=15)
            # Cut at the deadline (2 s, checked about once a second), however busy the client.
            assert trickle.closed_after is not None, kind
            assert trickle.closed_after < 6, kind
        scores(server.url)


def test_a_crowd_of_connections_cannot_lock_out_real_requests() -> None:
    with serving(REWARDS, "--workers", "1", "--max-connections", "16") as server:
        crowd: list[socket.socket] = []
        stop = threading.Event()

        def keep_crowding() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    crowd.append(server.connect(b"GET /health HTTP/1.1\r\nHo"))
                time.sleep(0.005)

        crowder = threading.Thread(target=keep_crowding, daemon=True)
        crowder.start()
        try:
            time.sleep(0.5)
            for _ in range(20):
                scores(server.url)
        finally:
            stop.set()
            crowder.join()
        assert len(crowd) > 32
        # The oldest were let go, with a JSON answer saying why.
        answers = []
        for sock in crowd[:16]:
            with contextlib.suppress(TimeoutError):
                answers.append(read_until_closed(sock, timeout=0.2))
        refused = [json_error(a) for a in answers if a]
        assert refused, "the oldest stalled connections should have been closed"
        assert {e["code"] for e in refused} == {"too_many_connections"}


def test_idle_connections_cannot_use_up_file_descriptors() -> None:
    # The server may open 256 files; 600 idle connections would use them all up.
    with serving(REWARDS, "--workers", "1", nofile=256) as server:
        idle = [server.connect() for _ in range(600)]
        time.sleep(0.5)
        for _ in range(5):
            scores(server.url)
        assert len(idle) == 600
        assert "lowered to" in server.output  # --max-connections was fitted under the limit


def test_oversized_and_malformed_requests_get_json_errors() -> None:
    with serving(REWARDS, "--workers", "1") as server:
        huge = server.connect(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
        try:
            for _ in range(100):
                huge.sendall(b"a" * 4096)
        except OSError:
            pass
        answer = read_until_closed(huge, timeout=5)
        assert status_of(answer) == 431
        assert json_error(answer)["code"] == "headers_too_large"
        garbage = read_until_closed(server.connect(b"NOT HTTP AT ALL\r\n\r\n"), 5)
        assert status_of(garbage) == 400
        assert json_error(garbage)["code"] == "invalid_http"
        scores(server.url)


def test_a_client_that_does_not_read_its_answer_is_let_go() -> None:
    # A 12 MB answer (echo returns what it was given) fills the socket buffers of a client that
    # reads nothing; the server drops it after --body-timeout instead of waiting for ever.
    big = json.dumps({"messages": MESSAGES, "pad": "x" * 12_000_000}).encode()
    with serving(REWARDS, "--workers", "1", "--body-timeout", "2") as server:
        sock = server.connect(
            request("POST", "/evaluate/echo", big, content_type=JSON), receive_buffer=4096
        )
        time.sleep(7)  # evaluation (~1 s), then 2 s to read, checked about once a second
        answer = read_until_closed(sock, timeout=10)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert status_of(head) == 200
        length = int(re.search(rb"content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        assert length > 12_000_000
        assert len(body) < length  # cut off: what the buffers held, not the whole answer
        scores(server.url)


@pytest.mark.parametrize("implementation", ["httptools", "h11"])
def test_both_uvicorn_protocols_are_guarded(live_server: Any, implementation: str) -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from reward_kit.service import ServeSettings, create_app
    from reward_kit.service._connections import ConnectionLimits, guarded_protocol_class

    base = {"httptools": HttpToolsProtocol, "h11": H11Protocol}[implementation]
    limits = ConnectionLimits(header_timeout=1, body_timeout=1, max_connections=8)
    app = create_app(settings=ServeSettings(targets=(REWARDS,), workers=0, body_timeout=1))
    with live_server(app, http=guarded_protocol_class(limits, base)) as live:
        clients = Clients(live.port)
        try:
            late = clients.connect(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            crowd = [clients.connect() for _ in range(12)]  # over the cap of 8
            scores(live.url)
            answer = read_until_closed(late, timeout=5)
            assert json_error(answer)["code"] in ("request_timeout", "too_many_connections")
            garbage = read_until_closed(clients.connect(b"\x00\x01 garbage\r\n\r\n"), timeout=5)
            assert status_of(garbage) == 400
            assert json_error(garbage)["code"] == "invalid_http"
            assert all(read_until_closed(sock, timeout=5) == b"" for sock in crowd)
        finally:
            clients.close()
