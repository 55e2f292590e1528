"""``reward_kit.service.run_server``: what ``rk serve`` runs, usable from code."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap

import httpx
import pytest

from reward_kit import ConfigurationError
from reward_kit.service import ServeSettings, create_app, run_server

from ..conftest import QUICKSTART, free_port, wait_for_health

SCRIPT = textwrap.dedent(
    """
    import sys
    from reward_kit.service import ServeSettings, configure_logging, create_app, run_server

    settings = ServeSettings(targets=(sys.argv[1],), port=int(sys.argv[2]), workers=1,
                             log_format="json", log_level="warning")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    run_server(create_app(settings=settings), announce=lambda: print("announced", flush=True))
    """
)


def test_run_server_serves_an_app_made_in_code() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, QUICKSTART, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
        body = {"messages": [{"role": "assistant", "content": "<answer>4</answer>"}]}
        answer = httpx.post(f"{url}/evaluate/exact_match", json={**body, "ground_truth": "4"})
        # rk serve's connection guards are in place: unparsable HTTP gets their JSON error,
        # not uvicorn's plain-text one.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            reply = b"".join(iter(lambda: raw.recv(65536), b""))  # until the server closes
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert answer.json()["score"] == 1.0, err
    assert b'"invalid_http"' in reply, (reply, err)
    assert process.returncode == 0, err  # a graceful stop exits 0
    assert out.splitlines()[0] == "announced", (out, err)


def test_run_server_refuses_settings_that_are_not_the_apps() -> None:
    app = create_app(settings=ServeSettings(targets=(QUICKSTART,), workers=0))
    with pytest.raises(ConfigurationError, match="settings differ"):
        run_server(app, ServeSettings(targets=(QUICKSTART,), workers=0, port=1))
