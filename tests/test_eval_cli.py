"""rk eval: invalid scores, stdout/stderr split, choosing the function, the progress bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from reward_kit.cli import cli

from .conftest import QUICKSTART, ROOT

REWARDS = str(Path(__file__).parent / "fixtures" / "core_rewards.py")
SAMPLES = str(ROOT / "examples" / "quickstart" / "samples.jsonl")
REPLY = [{"role": "assistant", "content": "4"}]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def run_eval(*args: str) -> Result:
    return CliRunner().invoke(cli, ["eval", *args, "--quiet", "--workers", "1"])


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_invalid_scores_are_counted_apart_and_left_out_of_the_mean(tmp_path: Path) -> None:
    data = write_rows(
        tmp_path / "rows.jsonl",
        [{"messages": REPLY, "ground_truth": g} for g in ("4", "unknown", "4")],
    )
    result = run_eval(REWARDS, "--data", data, "--function", "invalid_score")
    assert result.exit_code == 0, result.output
    rows = jsonl(result.stdout)
    # The result lines keep what the function returned.
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert [r["result"]["is_score_valid"] for r in rows] == [True, False, True]
    assert "1.0000" in result.stderr  # the mean of the two valid scores, not 0.6667
    assert "0.6667" not in result.stderr
    assert "score invalid" in result.stderr
    assert "line 2: score invalid: no ground truth" in result.stderr
    strict = run_eval(REWARDS, "--data", data, "--function", "invalid_score", "--strict")
    assert strict.exit_code == 1


def test_without_out_results_go_to_stdout_and_the_summary_to_stderr(tmp_path: Path) -> None:
    result = run_eval(QUICKSTART, "--data", SAMPLES, "--function", "exact_match")
    assert result.exit_code == 0, result.output
    rows = jsonl(result.stdout)  # nothing but JSONL on stdout
    assert [r["result"]["score"] for r in rows] == [1.0, 0.0, 1.0, 1.0, 1.0]
    assert "mean score" in result.stderr
    assert "0.8000" in result.stderr
    out = tmp_path / "out.jsonl"
    to_file = run_eval(
        QUICKSTART, "--data", SAMPLES, "--function", "exact_match", "--out", str(out)
    )
    assert to_file.stdout == ""
    assert [(r["line"], r["result"]["score"]) for r in jsonl(out.read_text())] == [
        (r["line"], r["result"]["score"]) for r in rows
    ]


def test_several_functions_without_function_is_a_cli_hint() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reward_kit.cli", "eval", QUICKSTART, "--data", SAMPLES],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--function" in result.stderr
    assert "exact_match, format_check, length_score" in result.stderr
    assert "/evaluate/NAME" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_rows_function_is_used_and_never_silently_overridden(tmp_path: Path) -> None:
    data = write_rows(
        tmp_path / "rows.jsonl",
        [
            {"messages": REPLY, "function": "length"},
            {"messages": REPLY, "ground_truth": "4", "function": "invalid_score"},
            {"messages": REPLY, "function": "nope"},
        ],
    )
    # No --function: each row's own function scores it.
    rows = jsonl(run_eval(REWARDS, "--data", data).stdout)
    assert [(r["line"], r["status"], r["function"]) for r in rows] == [
        (1, "ok", "length"),
        (2, "ok", "invalid_score"),
        (3, "invalid", "nope"),
    ]
    assert [r["result"]["score"] for r in rows[:2]] == [1.0, 1.0]
    assert rows[2]["error"]["message"].startswith("line 3: function: no reward function named")
    # --function given: a row naming another function is an invalid row, not rescored.
    result = run_eval(REWARDS, "--data", data, "--function", "length")
    rows = jsonl(result.stdout)
    assert [(r["line"], r["status"]) for r in rows] == [(1, "ok"), (2, "invalid"), (3, "invalid")]
    assert rows[1]["result"] is None
    assert rows[1]["error"]["message"] == (
        "line 2: function: the row names 'invalid_score' but --function is 'length'"
    )
    # Several functions, some rows naming none: those rows say how to choose.
    mixed = write_rows(
        tmp_path / "mixed.jsonl", [{"messages": REPLY, "function": "length"}, {"messages": REPLY}]
    )
    rows = jsonl(run_eval(REWARDS, "--data", mixed).stdout)
    assert [r["status"] for r in rows] == ["ok", "invalid"]
    assert "--function" in rows[1]["error"]["message"]
    assert rows[1]["error"]["message"].startswith("line 2: function:")


def test_the_progress_bar_goes_to_stderr_and_stdout_stays_jsonl() -> None:
    # FORCE_COLOR makes rich treat stderr as a terminal, as when run by hand with `> out.jsonl`.
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    result = subprocess.run(
        [sys.executable, "-m", "reward_kit.cli", "eval", QUICKSTART, "--data", SAMPLES,
         "--function", "exact_match", "--workers", "1"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = jsonl(result.stdout)
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    assert "exact_match" in result.stderr
    assert "100%" in result.stderr  # the bar's last refresh
    assert "━" in result.stderr
    assert "mean score" in result.stderr


def test_a_row_nested_thousands_deep_is_reported_and_the_others_scored(tmp_path: Path) -> None:
    good = json.dumps({"messages": REPLY, "ground_truth": "4"})
    deep = '{"messages": [], "x": ' + "[" * 5000 + "]" * 5000 + "}"
    data = tmp_path / "rows.jsonl"
    data.write_text(f"{good}\n{deep}\n{good}\n")
    result = run_eval(QUICKSTART, "--data", str(data), "--function", "exact_match")
    assert result.exit_code == 0, result.output
    rows = jsonl(result.stdout)
    assert [r["status"] for r in rows] == ["ok", "invalid", "ok"]
    assert rows[1]["error"]["message"] == "line 2: not valid JSON: depth limit exceeded"
