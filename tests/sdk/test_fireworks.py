"""`rk fireworks shim` and `rk fireworks register`: the shim is imported and called the way
Fireworks calls it, against a live evaluator with an API key; the upload goes to a local fake
of Fireworks' evaluators endpoint."""

from __future__ import annotations

import importlib.util
import json
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

from ..conftest import LiveServer, free_port
from .conftest import KEY


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


def test_shim_scores_through_the_evaluator_with_the_key(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    shim = write_shim(tmp_path, server.url + "/", "echo")
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
    # Fireworks passes Message objects or dicts, any-JSON ground truth, tools, and row fields.
    messages = [Message(role="user", content="2+2?"), {"role": "assistant", "content": "4"}]
    result = shim.evaluate(messages, ground_truth={"answer": [4]}, tools=tools, split="train")
    assert set(result) <= {"score", "reason", "is_score_valid", "metrics", "step_outputs", "error"}
    assert result["is_score_valid"] is True
    assert result["score"] == pytest.approx(0.01)
    assert result["metrics"]["has_digit"]["score"] == 1.0
    got = json.loads(result["reason"])
    assert got["ground_truth"] == {"answer": [4]}
    assert got["kwargs"] == {"tools": tools, "split": "train"}


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
    server: LiveServer,
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
    shim = write_shim(tmp_path, server.url, function)
    result = shim.evaluate([{"role": "assistant", "content": "4"}], ground_truth="4")
    assert result["is_score_valid"] is False
    assert needle in result["reason"]


def test_shim_unreachable_evaluator_is_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    shim = write_shim(tmp_path, f"http://127.0.0.1:{free_port()}", "echo", "--timeout", "2")
    shim.ATTEMPTS = 2  # keep the test fast; retrying itself is what is checked
    result = shim.evaluate([{"role": "assistant", "content": "4"}])
    assert result["is_score_valid"] is False
    assert "could not reach" in result["reason"]


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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LiveServer
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
                server.url,
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
