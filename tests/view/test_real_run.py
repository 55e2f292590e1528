"""rk view on what rk run really writes: a run against the fake OpenAI-compatible server
(tests/run/_fake_openai.py), one of its generations failing, then viewed and compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reward_kit.view import compare, load_run, overview, query_samples

from ..run._fake_openai import FakeOpenAI, status

REWARDS = str(Path(__file__).parent.parent / "run" / "rewards.py")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_CACHE_DIR", str(tmp_path / "cache"))


def _run(server: FakeOpenAI, data: Path, out: Path, seed: int) -> None:
    from reward_kit.run import run

    run(
        data=str(data), base_url=server.url, out=str(out), model="fake-model", samples=2,
        k=[1, 2], seed=seed, rewards=[f"{REWARDS}:contains_answer"],
        set=("limits.max_attempts=1", "scoring.workers=0"),
    )  # fmt: skip


def test_a_real_run_is_viewed_and_compared(tmp_path: Path) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"What is {i} + {i}?", "ground_truth": str(2 * i)})
            + "\n"
            for i in range(1, 5)
        )
    )
    with FakeOpenAI() as server:
        server.responder = lambda body: "4"  # right for q2 only
        server.script(status(400))  # one sample's generation fails (not retried)
        _run(server, data, tmp_path / "a", seed=1)
        server.responder = lambda body: "2 4 6 8"  # right for every prompt
        _run(server, data, tmp_path / "b", seed=2)
    a, b = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    view = overview(a)
    reward = view["rewards"]["contains_answer"]
    assert reward["statuses"] == {"ok": 7, "skipped": 1}
    assert view["generation"]["statuses"] == {"ok": 7, "bad_request": 1}
    assert reward["pass_at_k"] is not None
    assert view["manifest"] is not None
    failed = query_samples(a, {"status": "failed"})["rows"]
    assert [r["generation_status"] for r in failed] == ["bad_request"]
    result = compare(a, b)["rewards"]["contains_answer"]
    assert result["matched"] == 4
    assert result["wins"] == 3
    assert result["ties"] == 1
    assert result["difference"] == pytest.approx(0.75)
