"""The rk command line: functions, eval (through the real engine) and rk-serve end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from reward_kit import ConfigurationError
from reward_kit.cli import cli
from reward_kit.cli._serve import serve_command
from reward_kit.service import ServeSettings

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


# --- rk serve's options are generated from ServeSettings ---

SETTINGS = [s for s in ServeSettings.describe() if s.flag is not None]


def test_rk_serve_help_shows_every_setting_with_its_variable_and_default() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=1000)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for spec in SETTINGS:
        line = next((x for x in lines if x.lstrip().startswith(f"{spec.flag} ")), None)
        assert line is not None, spec.flag
        assert f"env {spec.env}]" in line, line
        assert f"[default: {spec.shown};" in line, line
    # The variables without a flag are listed too.
    for spec in ServeSettings.describe():
        if spec.flag is None and spec.kind != "arguments":
            assert f"{spec.env}: {spec.help}" in result.output
            assert f"[default: {spec.shown}]" in result.output


def _from_flags(args: list[str]) -> object:
    """The settings ``rk serve ARGS`` would run with, or "refused"."""
    try:
        with serve_command.make_context("serve", ["t.py", *args]) as ctx:
            return ServeSettings.resolve(ctx.params, {})
    except (click.UsageError, ConfigurationError):
        return "refused"


def _from_environment(variable: str, value: str) -> object:
    try:
        return ServeSettings.resolve({"targets": ("t.py",)}, {variable: value})
    except ConfigurationError:
        return "refused"


# Values, good and bad, each setting's flag and variable must treat alike.
_SAMPLES = {
    "INTEGER": ["100", "0", "-3", "x", "2.5"],
    "SECONDS": ["45", "0.5", "0", "-1", "inf", "nan", "x"],
    "LEVEL": ["debug", "loud"],
    "FORMAT": ["json", "xml"],
    "MODE,...": ["api-key,mtls", "api-key, sso"],
    "HOST,...": ["rk.internal,*.corp.example", "https://rk.internal"],
    "IP,...": ["10.0.0.1,10.0.0.0/8", "proxy"],
}


def _cases() -> list[tuple[str, list[str], str, str]]:
    """(id, flag arguments, variable, variable value) per setting and sample."""
    cases = []
    for spec in SETTINGS:
        assert spec.flag is not None
        if spec.kind == "switch":
            pairs = [([spec.flag], "true"), ([f"--no-{spec.flag[2:]}"], "false")]
        elif spec.kind == "flag":
            pairs = [([spec.flag], "yes")]
        elif spec.kind == "repeat":
            pairs = [([spec.flag, "a=1,b", spec.flag, "c"], f"a=1,b{spec.separator}c")]
            if spec.separator == ",":
                pairs = [([spec.flag, "a", spec.flag, "b"], "a,b")]
        else:
            samples = _SAMPLES.get(spec.metavar, ["a.example", "GLOB_*"])
            pairs = [([spec.flag, value], value) for value in samples]
        cases += [(" ".join(args), args, spec.env, v) for args, v in pairs]
    return cases


@pytest.mark.parametrize(
    ("args", "variable", "value"), [c[1:] for c in _cases()], ids=[c[0] for c in _cases()]
)
def test_a_flag_and_its_variable_accept_and_refuse_the_same_values(
    args: list[str], variable: str, value: str
) -> None:
    # Before, flags had their own types: --timeout 0 or --header-timeout -1 were taken while
    # RK_TIMEOUT=0 was refused.
    assert _from_flags(args) == _from_environment(variable, value)


def test_a_bad_flag_value_is_one_clear_line() -> None:
    result = CliRunner().invoke(cli, ["serve", "t.py", "--header-timeout", "0"])
    assert result.exit_code == 2
    assert "Invalid value for '--header-timeout': must be a positive number" in result.output
