"""The rk command line: functions, eval (through the real engine) and rk-serve end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from reward_kit.cli import cli

from .conftest import HOSTILE, QUICKSTART, ROOT, free_port, wait_for_health

SAMPLES = str(ROOT / "examples" / "quickstart" / "samples.jsonl")


def test_functions_lists_what_a_target_exposes() -> None:
    result = CliRunner().invoke(cli, ["functions", QUICKSTART])
    assert result.exit_code == 0, result.output
    assert "exact_match  [pointwise, process, timeout 5s]" in result.output
    as_json = json.loads(CliRunner().invoke(cli, ["functions", QUICKSTART, "--json"]).output)
    assert [f["name"] for f in as_json] == ["exact_match", "format_check", "length_score"]


def test_eval_writes_results_in_input_order(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            QUICKSTART,
            "--data",
            SAMPLES,
            "--function",
            "exact_match",
            "--out",
            str(out),
            "--quiet",
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in lines] == [1, 2, 3, 4, 5]
    assert [r["result"]["score"] for r in lines] == [1.0, 0.0, 1.0, 1.0, 1.0]
    assert all(r["function"] == "exact_match" and r["status"] == "ok" for r in lines)
    assert "mean score" in result.output
    assert "0.8000" in result.output
    assert "slowest: line" in result.output


def test_eval_reports_bad_rows_by_line_and_keeps_going(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    good = {"messages": [{"role": "assistant", "content": "4"}], "ground_truth": "4"}
    data.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{broken json",
                json.dumps({"messages": "nope"}),
                "",
                json.dumps({**good, "behaviour": "segfault"}),
                json.dumps({**good, "behaviour": "spin"}),
                json.dumps(good),
            ]
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            HOSTILE,
            "--data",
            str(data),
            "--function",
            "routed",
            "--out",
            str(out),
            "--quiet",
            "--timeout",
            "1",
            "--strict",
        ],
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["line"], r["status"]) for r in rows] == [
        (1, "ok"),
        (2, "invalid"),
        (3, "invalid"),
        (5, "crashed"),
        (6, "timeout"),
        (7, "ok"),
    ]
    assert rows[1]["error"]["message"].startswith("line 2: not valid JSON")
    assert rows[2]["error"]["message"] == "line 3.messages: Input should be a valid list"
    assert "line 5: crashed" in result.output
    assert "invalid" in result.output
    assert result.exit_code == 1  # --strict


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", QUICKSTART, "--data", SAMPLES], "choose one with --function NAME"),
        (
            ["eval", QUICKSTART, "--data", "/nonexistent.jsonl", "--function", "exact_match"],
            "cannot read",
        ),
        (["functions", "/nonexistent/rewards.py"], "no such file"),
    ],
)
def test_cli_errors_are_one_clear_line(args: list[str], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reward_kit.cli", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_rk_serve_end_to_end_with_an_api_key(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "RK_API_KEYS": "ci 0123456789abcdef0123", "RK_WORKERS": "1"}
    rk_serve = Path(sys.executable).parent / "rk-serve"
    process = subprocess.Popen(
        [str(rk_serve), QUICKSTART, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process)
        body = {
            "messages": [{"role": "assistant", "content": "<answer>4</answer>"}],
            "ground_truth": "4",
        }
        url = f"http://127.0.0.1:{port}/evaluate/exact_match"
        assert httpx.post(url, json=body).status_code == 401
        ok = httpx.post(url, json=body, headers={"Authorization": "Bearer 0123456789abcdef0123"})
        assert ok.status_code == 200
        assert ok.json()["score"] == 1.0
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "try: curl -s" in output
    assert "0123456789abcdef0123" not in output


def test_rk_serve_refuses_public_bind_without_auth() -> None:
    rk_serve = Path(sys.executable).parent / "rk-serve"
    result = subprocess.run(
        [str(rk_serve), QUICKSTART, "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "refusing to serve on 0.0.0.0 without authentication" in result.stderr


def test_rk_serve_stops_with_one_line_when_a_setup_fails() -> None:
    rk_serve = Path(sys.executable).parent / "rk-serve"
    broken = str(ROOT / "tests" / "fixtures" / "setup" / "broken_setup.py")
    result = subprocess.run(
        [str(rk_serve), broken, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "error: reward functions failed to start" in result.stderr
    assert "missing.bin" in result.stderr
    assert "Traceback" not in result.stderr
