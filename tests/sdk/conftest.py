"""SDK fixtures: a real evaluator on loopback with an API key, serving tests/sdk/rewards.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reward_kit.sdk import ApiKey

from ..conftest import LiveServer

REWARDS = str(Path(__file__).with_name("rewards.py"))
KEY = "sdk-test-key-0123456789abcdef"


def make_server(**settings: object) -> LiveServer:
    from reward_kit.service import ServeSettings, create_app

    merged = {"targets": (REWARDS,), "api_keys": (KEY,), "workers": 1, **settings}
    return LiveServer(create_app(settings=ServeSettings(**merged)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """One evaluator per test module: starting uvicorn per test would dominate the run time."""
    with make_server() as live:
        yield live


@pytest.fixture(autouse=True)
def close_transports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Closes every sync httpx transport a test opened. Adapters leave a caller's transport
    open (its owner closes it), and here the test is that owner: an unclosed one would warn
    whenever the garbage collector happened to reach it, in some later test."""
    opened: list[httpx.HTTPTransport] = []
    original = httpx.HTTPTransport.__init__

    def tracked(self: httpx.HTTPTransport, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(httpx.HTTPTransport, "__init__", tracked)
    yield
    for transport in opened:
        transport.close()


@pytest.fixture
def auth() -> ApiKey:
    return ApiKey(KEY)


class CountingTransport(httpx.HTTPTransport):
    """A real HTTP transport that counts the requests it sends, by path."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


class AsyncCountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await super().handle_async_request(request)
