"""rk run fixtures: a scriptable OpenAI-compatible server on loopback, a private cache, and a
small dataset with rewards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._fake_openai import FakeOpenAI

REWARDS = str(Path(__file__).with_name("rewards.py"))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never the developer's ~/.cache: every test gets its own default cache.
    monkeypatch.setenv("RK_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh fake endpoint per test (request counts start at 0)."""
    with FakeOpenAI() as server:
        yield server


def write_rows(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.fixture
def prompts(tmp_path: Path) -> str:
    """Four arithmetic prompts with their answers."""
    rows = [
        {"id": f"q{i}", "prompt": f"What is {i} + {i}?", "ground_truth": str(2 * i)}
        for i in range(1, 5)
    ]
    return write_rows(tmp_path / "prompts.jsonl", rows)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


FAST = ("scoring.workers=0", "limits.backoff_base=0.001", "limits.backoff_max=0.005")


def run_on(
    server: FakeOpenAI, data: str, out: Path, *, sets: tuple[str, ...] = (), **options: Any
) -> Any:
    """One run against the fake endpoint with fast retries and no worker processes."""
    from reward_kit.run import run

    options.setdefault("rewards", [f"{REWARDS}:contains_answer"])
    options.setdefault("model", "fake-model")
    return run(data=data, base_url=server.url, out=str(out), set=(*FAST, *sets), **options)
