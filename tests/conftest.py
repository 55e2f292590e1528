"""Shared fixtures: a clean RK_* environment, real servers on loopback, integration gating."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
HOSTILE = str(FIXTURES / "hostile.py")
QUICKSTART = str(ROOT / "examples" / "quickstart" / "rewards.py")


def require_integration(*tools: str, modules: tuple[str, ...] = (), reason: str = "") -> None:
    """Skip (or, under RK_REQUIRE_INTEGRATION=1 as in CI, fail) when system tools or Python
    modules are missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    missing += [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    why = reason or f"needs {', '.join(missing)} (installed by .ci/run and the dev extra)"
    from ._strict_skips import strict  # not at import time: pytest rewrites the plugin first

    if strict():
        pytest.fail(f"RK_REQUIRE_INTEGRATION=1 but {why}")
    pytest.skip(why)


@pytest.fixture(autouse=True)
def _clean_rk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings come from RK_* variables; a developer's shell must not leak into tests.
    for name in list(os.environ):
        if name.startswith("RK_") and name != "RK_REQUIRE_INTEGRATION":
            monkeypatch.delenv(name)
    # Clients given no auth read auth.ini (default_credential); never a developer's own.
    monkeypatch.setenv("RK_AUTH_FILE", "/nonexistent/reward-kit-test/auth.ini")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread (the httpx test pattern)."""

    def __init__(self, app: Any, **config: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", **config
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.config.ssl_certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server() -> type[LiveServer]:
    """Use as ``with live_server(app) as server: httpx.get(server.url + "/health")``."""
    return LiveServer


def wait_for_health(url: str, process: subprocess.Popen[Any] | None = None) -> None:
    """Poll ``url``/health until it answers 200 (failing fast if ``process`` exits)."""
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process is None or process.poll() is None, "rk-serve exited"
        assert time.monotonic() < deadline, f"{url} did not become healthy"
        time.sleep(0.05)


@contextlib.contextmanager
def rk_serve(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real ``rk-serve ARGS`` subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "rk-serve"), *args, "--port", str(port)]
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def error_of(response: Any, status: int, code: str) -> str:
    """The message of a JSON error answer, after checking its status, shape and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    return body["error"]["message"]  # type: ignore[no-any-return]


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus exposition text (0.0 when absent)."""
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
