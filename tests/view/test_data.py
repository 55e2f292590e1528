"""rk view's data side: reading runs and rk eval files, queries, the overview, the paired
comparison, the export file, the HTTP API on a real loopback server, and the CLI."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from reward_kit._errors import ConfigurationError, RequestRejected
from reward_kit.cli import cli
from reward_kit.view import compare, create_app, load_run, overview, query_samples, render_export

from ..conftest import LiveServer
from ._synthetic import HOSTILE, write_eval_file, write_run


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_run(tmp_path / "a", hostile_prompt=2),
        write_run(tmp_path / "b", skill=0.9, seed=1, model="model-b"),
    )


def test_run_directory_is_indexed_with_failures_as_statuses(two_runs: tuple[Path, Path]) -> None:
    run = load_run(two_runs[0])
    assert (len(run.rows), len(run.by_prompt), run.rewards) == (120, 30, ["exact_match", "brevity"])
    assert run.name == "a (model-a)"
    view = overview(run)
    statuses = view["rewards"]["exact_match"]["statuses"]
    # prompt 5 sample 0: generation timeout; prompt 3 sample 1: reward timeout; 2/0: error.
    assert statuses == {"ok": 117, "error": 1, "timeout": 1, "skipped": 1}
    histogram = view["rewards"]["exact_match"]["histogram"]
    assert sum(histogram["counts"]) == 117  # failures are not zeros in the histogram
    assert view["generation"]["statuses"] == {"ok": 119, "timeout": 1}
    assert view["rewards"]["exact_match"]["pass_at_k"]["4"] is not None
    assert view["manifest"]["config"]["model"]["name"] == "model-a"


def test_without_summary_the_mean_is_computed_and_pass_at_k_is_absent(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "r", summary=False))
    reward = overview(run)["rewards"]["exact_match"]
    scores = [s for s in run.scores["exact_match"] if s is not None]
    assert reward["mean"] == pytest.approx(sum(scores) / len(scores))
    assert reward["ci"][0] < reward["mean"] < reward["ci"][1]
    assert reward["pass_at_k"] is None
    assert set(reward["metrics"]) == {"parsed"}


def test_a_torn_last_line_is_dropped_and_a_damaged_middle_line_is_an_error(
    tmp_path: Path,
) -> None:
    out = write_run(tmp_path / "r", prompts=2, samples=1)
    results = out / "results.jsonl"
    results.write_text(results.read_text() + '{"prompt_id": "p9", "sam')
    run = load_run(out)
    assert run.torn
    assert len(run.rows) == 2
    results.write_text('{"broken\n' + results.read_text())
    with pytest.raises(ConfigurationError, match="line 1 is not valid JSON"):
        load_run(out)
    with pytest.raises(ConfigurationError, match="not a run directory"):
        load_run(tmp_path)


def test_rk_eval_results_are_read_as_one_sample_per_row(tmp_path: Path) -> None:
    run = load_run(write_eval_file(tmp_path / "eval.jsonl"))
    assert run.kind == "eval"
    assert run.rewards == ["exact_match"]
    assert run.statuses["exact_match"][3] == "timeout"
    assert run.scores["exact_match"][3] is None
    view = overview(run)
    assert view["rewards"]["exact_match"]["statuses"] == {"ok": 9, "timeout": 1}
    assert view["rewards"]["exact_match"]["mean"] == pytest.approx(4 / 9)
    assert query_samples(run, {"prompt": "line 4"})["rows"][0]["rewards"]["exact_match"] == {
        "score": None, "status": "timeout",
    }  # fmt: skip


def test_queries_filter_sort_and_page(two_runs: tuple[Path, Path]) -> None:
    run = load_run(two_runs[0])
    failed = query_samples(run, {"status": "failed"})
    assert failed["total"] == 3
    assert {r["prompt_id"] for r in failed["rows"]} == {"p00002", "p00003", "p00005"}
    assert query_samples(run, {"status": "timeout", "reward": "brevity"})["total"] == 1
    ones = query_samples(run, {"reward": "exact_match", "min": "1", "max": "1"})
    assert ones["total"] == sum(s == 1.0 for s in run.scores["exact_match"])
    assert query_samples(run, {"prompt": "p0001"})["total"] == 40  # p00010..p00019
    assert query_samples(run, {"q": "WINDOW.__RKINJECTED"})["total"] == 1
    page = query_samples(run, {"sort": "score", "reward": "brevity", "desc": "1", "limit": "5"})
    scores = [r["rewards"]["brevity"]["score"] for r in page["rows"]]
    assert scores == sorted(scores, reverse=True)
    assert len(scores) == 5
    last = query_samples(run, {"sort": "score", "offset": "117"})["rows"]
    assert [r["rewards"]["exact_match"]["score"] for r in last] == [None, None, None]
    with pytest.raises(RequestRejected, match=r"^sort: expected one of"):
        query_samples(run, {"sort": "nope"})
    with pytest.raises(RequestRejected, match=r"^min: expected a number"):
        query_samples(run, {"min": "x"})
    with pytest.raises(RequestRejected, match=r"^reward: no reward 'nope'"):
        query_samples(run, {"reward": "nope"})


def test_paired_comparison(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / "a", prompts=40, skill=0.3))
    b = load_run(write_run(tmp_path / "b", prompts=50, skill=0.9, seed=4))
    result = compare(a, b)
    assert (result["shared_prompts"], result["only_a"], result["only_b"]) == (40, 0, 10)
    exact = result["rewards"]["exact_match"]
    assert exact["matched"] == 40
    assert exact["wins"] + exact["losses"] + exact["ties"] == 40
    assert exact["difference"] == pytest.approx(exact["mean_b"] - exact["mean_a"])
    assert 0 < exact["ci"][0] < exact["difference"] < exact["ci"][1]  # B is clearly better
    assert exact["wins"] > exact["losses"]
    assert compare(a, b) == result  # seeded: the page and the export agree
    flipped = [c for c in exact["changed"] if c["flipped"]]
    assert len(flipped) == exact["flipped"]
    assert exact["changed"][: len(flipped)] == flipped
    reverse = compare(b, a)["rewards"]["exact_match"]
    assert reverse["difference"] == pytest.approx(-exact["difference"])
    assert (reverse["wins"], reverse["losses"]) == (exact["losses"], exact["wins"])


def test_the_export_inlines_everything_and_escapes_results(two_runs: tuple[Path, Path]) -> None:
    html = render_export([load_run(p) for p in two_runs])
    assert "<script>window.__rkInjected" not in html  # the hostile response is data, escaped
    data = re.search(r'<script type="application/json" id="rk-data">(.*?)</script>', html, re.S)
    assert data is not None
    payload = json.loads(data.group(1))
    assert HOSTILE in [row["response"] for row in payload["rows"][0]]
    assert set(payload["compares"]) == {"0/1", "1/0"}
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from anywhere
    assert "uPlot" in html
    assert "Permission is hereby granted" in html


def test_http_api_on_loopback(two_runs: tuple[Path, Path]) -> None:
    app = create_app([load_run(p) for p in two_runs])
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "static/app.js" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/static/vendor/uPlot.LICENSE").status_code == 200
        runs = client.get("/api/runs").json()
        assert [r["samples"] for r in runs] == [120, 120]
        samples = client.get("/api/runs/0/samples", params={"status": "failed"}).json()
        assert samples["total"] == 3
        one = client.get(f"/api/runs/0/samples/{samples['rows'][0]['id']}").json()
        assert one["row"]["prompt_id"] == samples["rows"][0]["prompt_id"]
        prompt = client.get("/api/runs/0/prompt", params={"id": "p00002"}).json()
        assert [s["row"]["sample_index"] for s in prompt["samples"]] == [0, 1, 2, 3]
        both = client.get("/api/compare/0/1/prompt", params={"id": "p00002"}).json()
        assert len(both["a"]) == len(both["b"]) == 4
        assert "exact_match" in client.get("/api/compare/0/1").json()["rewards"]
        bad = client.get("/api/runs/0/samples", params={"limit": "0"})
        assert bad.status_code == 400
        assert bad.json()["error"]["message"].startswith("limit:")
        assert client.get("/api/runs/7/overview").status_code == 400
        # DNS rebinding: a page on another name that resolves to 127.0.0.1 gets nothing.
        rebound = client.get("/api/runs", headers={"host": "evil.example:80"})
        assert rebound.status_code == 421


def test_cli_refuses_a_non_loopback_bind(two_runs: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(cli, ["view", "--host", "0.0.0.0", str(two_runs[0])])
    assert result.exit_code != 0
    assert "refusing to serve runs on 0.0.0.0" in str(result.exception)


def test_cli_export(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["view", "--export", str(out), *map(str, two_runs)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    assert out.read_text().startswith("<!doctype html>")


def test_cli_serves_on_a_free_loopback_port(two_runs: tuple[Path, Path]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reward_kit.cli", "view", str(two_runs[0])],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert url is not None, line
        assert httpx.get(url.group(0) + "api/runs").json()[0]["samples"] == 120
        with socket.create_connection(("127.0.0.1", int(url.group(1)))):
            pass
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
