"""`rk fireworks shim` and `rk fireworks register`: the shim is imported and called the way
Fireworks calls it, against a live `rk-serve` subprocess with an API key (and against a raw
socket for the broken answers a healthy evaluator never gives); the upload goes to a local fake
of Fireworks' evaluators endpoint."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reward_kit import Message
from reward_kit.cli import cli

from ..conftest import LiveServer, free_port, rk_serve
from .conftest import KEY, REWARDS


@pytest.fixture(scope="module")
def evaluator() -> Iterator[str]:
    """A real ``rk-serve`` subprocess with an API key, as a deployed evaluator would be."""
    with rk_serve(REWARDS, "--workers", "1", env={"RK_API_KEYS": KEY}) as url:
        yield url


def write_shim(tmp_path: Path, url: str, function: str, *extra: str) -> ModuleType:
    target = tmp_path / "main.py"
    result = CliRunner().invoke(
        cli,
        ["fireworks", "shim", "--url", url, "--function", function, "-o", str(target), *extra],
    )
    assert result.exit_code == 0, result.output
    spec = importlib.util.spec_from_file_location(f"shim_{function}_{id(target)}", target)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOLS = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    "ground_truth",
    [{"answer": [4], "unit": None}, [1, "two", 3.5], 42, 0.5, "4", True, None],
    ids=["dict", "list", "int", "float", "str", "bool", "none"],
)
def test_shim_scores_through_the_evaluator_with_the_key(
    evaluator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ground_truth: Any
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    shim = write_shim(tmp_path, evaluator + "/", "echo")
    # Exactly what Fireworks passes: a list of message dicts, any-JSON ground truth, tools,
    # and the other dataset fields as keywords.
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    result = shim.evaluate(
        messages=messages, ground_truth=ground_truth, tools=TOOLS, split="train", row_id=7
    )
    assert set(result) <= {"score", "reason", "is_score_valid", "metrics", "step_outputs", "error"}
    assert result["is_score_valid"] is True, result["reason"]
    assert result["score"] == pytest.approx(0.01)
    assert result["metrics"]["has_digit"]["score"] == 1.0
    got = json.loads(result["reason"])
    assert got["roles"] == ["system", "user", "assistant"]
    assert got["ground_truth"] == ground_truth
    assert got["kwargs"] == {"tools": TOOLS, "split": "train", "row_id": 7}


def test_shim_accepts_message_objects(
    evaluator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    shim = write_shim(tmp_path, evaluator, "echo")
    messages = [Message(role="user", content="2+2?"), Message(role="assistant", content="4")]
    assert shim.evaluate(messages, ground_truth="4")["score"] == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("key", "function", "needle"),
    [
        (None, "echo", "RK_API_KEY is not set"),
        ("wrong-key-0123456789abcdef", "echo", "403"),
        (KEY, "fails", "function_error"),
        (KEY, "nope", "404"),
    ],
)
def test_shim_failure_is_an_invalid_score_with_the_reason(
    evaluator: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: str | None,
    function: str,
    needle: str,
) -> None:
    if key:
        monkeypatch.setenv("RK_API_KEY", key)
    else:
        monkeypatch.delenv("RK_API_KEY", raising=False)
    shim = write_shim(tmp_path, evaluator, function)
    result = shim.evaluate([{"role": "assistant", "content": "4"}], ground_truth="4")
    assert result["is_score_valid"] is False
    assert needle in result["reason"]


class Opaque:
    """Neither JSON, nor a pydantic model, nor numpy: its repr must never be sent."""


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        pytest.param({"ground_truth": Opaque()}, "ground_truth is not JSON: Opaque", id="object"),
        pytest.param({"ground_truth": {"a": {1, 2}}}, "ground_truth is not JSON: set", id="set"),
        pytest.param({"tools": [Opaque()]}, "tools is not JSON", id="tools"),
        pytest.param({"extra": Opaque()}, "extra is not JSON", id="kwarg"),
    ],
)
def test_shim_refuses_a_sample_that_is_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], needle: str
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    with RawServer(b"") as raw:  # nothing may be sent
        shim = write_shim(tmp_path, raw.url, "echo")
        result = shim.evaluate([{"role": "assistant", "content": "4"}], **fields)
    assert result["is_score_valid"] is False
    assert "could not encode the sample as JSON" in result["reason"]
    assert needle in result["reason"]
    assert raw.connections == 0


def test_shim_unreachable_evaluator_is_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    shim = write_shim(tmp_path, f"http://127.0.0.1:{free_port()}", "echo", "--timeout", "2")
    shim.ATTEMPTS = 2  # keep the test fast; retrying itself is what is checked
    result = shim.evaluate([{"role": "assistant", "content": "4"}])
    assert result["is_score_valid"] is False
    assert "could not reach" in result["reason"]


class RawServer:
    """A loopback TCP server that reads each request and answers ``answer`` verbatim, then
    closes: for the broken answers a healthy evaluator never gives."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(self.answer)

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.mark.parametrize(
    ("answer", "needle"),
    [
        # the connection closes before any answer: http.client.RemoteDisconnected
        pytest.param(b"", "RemoteDisconnected", id="closed"),
        # the answer promises 100 bytes and stops after 12: http.client.IncompleteRead
        pytest.param(
            b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"score": 1.',
            "IncompleteRead",
            id="truncated",
        ),
        # not an HTTP answer at all: http.client.BadStatusLine
        pytest.param(b"garbage\r\n\r\n", "BadStatusLine", id="not-http"),
    ],
)
def test_shim_transport_failures_are_invalid_never_a_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: bytes, needle: str
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    with RawServer(answer) as raw:
        shim = write_shim(tmp_path, raw.url, "echo", "--timeout", "5")
        shim.ATTEMPTS = 2
        monkeypatch.setattr(shim.time, "sleep", lambda seconds: None)
        result = shim.evaluate([{"role": "assistant", "content": "4"}], ground_truth="4")
    assert result["is_score_valid"] is False
    assert "could not reach the evaluator" in result["reason"]
    assert needle in result["reason"]
    assert raw.connections == 2  # a dropped connection is retried, like the SDK does


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        pytest.param(b"<html>proxy</html>", "not JSON", id="html"),
        pytest.param(b"[1, 2]", "no numeric score", id="list"),
        pytest.param(b'{"reason": "no score here"}', "no numeric score", id="no-score"),
        pytest.param(b'{"score": "1.0"}', "no numeric score", id="string-score"),
    ],
)
def test_shim_answer_without_a_score_is_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes, needle: str
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    with RawServer(head + body) as raw:
        shim = write_shim(tmp_path, raw.url, "echo")
        result = shim.evaluate([{"role": "assistant", "content": "4"}])
    assert result["is_score_valid"] is False
    assert needle in result["reason"]


class FakeFireworks:
    """Records what `rk fireworks register` sends to POST /v1/accounts/{a}/evaluators."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

        async def create(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append(
                {
                    "path": request.url.path,
                    "auth": request.headers.get("authorization"),
                    "body": body,
                }
            )
            account = request.path_params["account"]
            return JSONResponse({"name": f"accounts/{account}/evaluators/{body['evaluatorId']}"})

        self.app = Starlette(
            routes=[Route("/v1/accounts/{account}/evaluators", create, methods=["POST"])]
        )


def test_register_uploads_the_shim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evaluator: str
) -> None:
    fake = FakeFireworks()
    with LiveServer(fake.app) as fireworks:
        monkeypatch.setenv("FIREWORKS_API_KEY", "fw-key")
        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acme")
        monkeypatch.setenv("FIREWORKS_API_BASE", fireworks.url)
        result = CliRunner().invoke(
            cli,
            [
                "fireworks",
                "register",
                "--id",
                "math-eval",
                "--url",
                evaluator,
                "--function",
                "echo",
            ],
        )
    assert result.exit_code == 0, result.output
    assert "accounts/acme/evaluators/math-eval" in result.output
    (sent,) = fake.requests
    assert sent["path"] == "/v1/accounts/acme/evaluators"
    assert sent["auth"] == "Bearer fw-key"
    assert sent["body"]["evaluatorId"] == "math-eval"
    (criterion,) = sent["body"]["evaluator"]["criteria"]
    snippets = criterion["codeSnippets"]
    assert (snippets["entryFile"], snippets["entryFunc"]) == ("main.py", "evaluate")
    # The uploaded code is the shim itself: it must work when run as Fireworks runs it.
    (tmp_path / "main.py").write_text(snippets["fileContents"]["main.py"])
    spec = importlib.util.spec_from_file_location("uploaded_main", tmp_path / "main.py")
    assert spec is not None
    assert spec.loader is not None
    uploaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(uploaded)
    monkeypatch.setenv("RK_API_KEY", KEY)
    assert uploaded.evaluate([{"role": "assistant", "content": "abc"}])["score"] == 0.03


def test_register_needs_fireworks_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIREWORKS_API_KEY", raising=False)
    result = CliRunner().invoke(
        cli,
        [
            "fireworks",
            "register",
            "--id",
            "x",
            "--url",
            "http://h",
            "--function",
            "f",
        ],
    )
    assert result.exit_code != 0
    assert "FIREWORKS_API_KEY" in str(result.exception or result.output)


def test_the_shim_is_the_linted_module_with_its_three_constants_set() -> None:
    from reward_kit.sdk import _fireworks_main
    from reward_kit.sdk.fireworks import render_shim

    template = Path(_fireworks_main.__file__).read_text().splitlines()
    text = render_shim(url="http://h:1/", function="f", api_key_env="", timeout=5).splitlines()
    changed = [(a, b) for a, b in zip(template, text, strict=True) if a != b]
    assert changed == [
        (
            'EVALUATOR_URL = "http://127.0.0.1:8000/evaluate/reward"',
            "EVALUATOR_URL = 'http://h:1/evaluate/f'",
        ),
        ('API_KEY_ENV = "RK_API_KEY"', "API_KEY_ENV = ''"),
        ("TIMEOUT = 60.0", "TIMEOUT = 5.0"),
    ]


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("3", 3.0, 3.0),
        ("soon", 0.0, 0.0),
        ("", 0.0, 0.0),
        ("-1", 0.0, 0.0),
        ("inf", 0.0, 0.0),
        ("DATE+5", 3.5, 5.0),  # an HTTP date 5 s ahead, in the -0000 form too
        ("DATE-0000+5", 3.5, 5.0),
    ],
)
def test_shim_reads_both_forms_of_retry_after(value: str, low: float, high: float) -> None:
    import datetime
    import email.message
    import urllib.error
    from email.utils import format_datetime

    from reward_kit.sdk import _fireworks_main as shim

    if value.startswith("DATE"):
        when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
        value = format_datetime(when, usegmt=not value.startswith("DATE-0000"))
        if "+" in value:  # format_datetime writes +0000 when not GMT: make it -0000
            value = value.replace("+0000", "-0000")
    headers = email.message.Message()
    headers["Retry-After"] = value
    error = urllib.error.HTTPError("http://h", 503, "busy", headers, None)
    assert low <= shim._retry_after(error) <= high


def test_shim_waits_at_least_what_the_evaluator_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    busy = (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"retry-after: 7\r\ncontent-length: 48\r\nconnection: close\r\n\r\n"
        b'{"error":{"code":"overloaded","message":"busy"}}'
    )
    with RawServer(busy) as raw:
        shim = write_shim(tmp_path, raw.url, "echo")
        shim.ATTEMPTS = 2
        waits: list[float] = []
        monkeypatch.setattr(shim.time, "sleep", waits.append)
        result = shim.evaluate([{"role": "assistant", "content": "4"}])
    assert result["is_score_valid"] is False
    assert waits == [7.0]  # a floor under the 0.5 s backoff, as reward-kit's SDK
    assert raw.connections == 2


def test_shim_backoff_is_jittered_with_retry_after_as_its_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    busy = (
        b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
        b"retry-after: 1\r\ncontent-length: 48\r\nconnection: close\r\n\r\n"
        b'{"error":{"code":"overloaded","message":"busy"}}'
    )
    with RawServer(busy) as raw:
        shim = write_shim(tmp_path, raw.url, "echo")
        waits: list[float] = []
        monkeypatch.setattr(shim.time, "sleep", waits.append)
        runs = [shim.evaluate([{"role": "assistant", "content": "4"}]) for _ in range(20)]
    assert all(run["is_score_valid"] is False and "429" in run["reason"] for run in runs)
    assert raw.connections == 20 * shim.ATTEMPTS
    # Between half and all of 0.5 s, 1 s, 2 s... each, and never below the server's 1 s.
    ceilings = [min(8.0, 0.5 * 2**attempt) for attempt in range(shim.ATTEMPTS - 1)]
    for run in range(20):
        delays = waits[run * len(ceilings) : (run + 1) * len(ceilings)]
        for delay, ceiling in zip(delays, ceilings, strict=True):
            assert max(1.0, ceiling / 2) <= delay <= max(1.0, ceiling)
    assert len(set(waits)) > 10  # jittered: samples that failed together retry apart
