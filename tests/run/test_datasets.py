"""Datasets other than JSONL (the datasets extra), field mapping, limits, and the progress bar
and table on a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from reward_kit import ConfigurationError, MissingDependency

from ..conftest import require_integration
from ._fake_openai import FakeOpenAI
from .conftest import run_on

ROWS = [{"qid": f"r{i}", "question": f"q {i}", "answer": str(i), "level": i % 2} for i in range(6)]
FIELDS = ("data.fields.id=qid", "data.fields.prompt=question", "data.fields.ground_truth=answer")


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_integration(modules=("datasets",), reason="needs the datasets extra")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def write(tmp_path: Path, kind: str) -> str:
    import datasets

    table = datasets.Dataset.from_list(ROWS)
    path = tmp_path / f"rows.{kind}"
    if kind == "csv":
        table.to_csv(str(path))
    elif kind == "parquet":
        table.to_parquet(str(path))
    elif kind == "json":
        path.write_text(json.dumps(ROWS))
    else:
        path = tmp_path / "saved"
        datasets.DatasetDict({"test": table}).save_to_disk(str(path))
    return str(path)


@pytest.mark.usefixtures("hf_home")
@pytest.mark.parametrize("kind", ["csv", "parquet", "json", "disk"])
def test_datasets_formats(fake_openai: FakeOpenAI, tmp_path: Path, kind: str) -> None:
    data = write(tmp_path, kind)
    result = run_on(
        fake_openai, data, tmp_path / "run", sets=(*FIELDS, "data.limit=4"),
        rewards=["tests/run/rewards.py:contains_answer"],
    )  # fmt: skip
    rows = list(result)
    assert sorted(r["prompt_id"] for r in rows) == ["r0", "r1", "r2", "r3"]
    assert {str(r["ground_truth"]) for r in rows} == {"0", "1", "2", "3"}
    assert result.manifest["dataset"]["format"] == kind
    assert len(result.manifest["dataset"]["sha256"]) == 64


@pytest.mark.usefixtures("hf_home")
def test_a_missing_split_names_the_ones_there(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    data = write(tmp_path, "disk")
    with pytest.raises(ConfigurationError, match=r"no split 'train' \(the dataset has: test\)"):
        run_on(fake_openai, data, tmp_path / "run", sets=(*FIELDS, "data.split=train"))


def test_a_missing_extra_names_the_pip_command(
    fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    path = tmp_path / "rows.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependency, match=r"pip install 'reward-kit\[datasets\]'"):
        run_on(fake_openai, str(path), tmp_path / "run")
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    from click.testing import CliRunner

    from reward_kit.cli import cli

    result = CliRunner().invoke(cli, ["run", "--data", str(path)])
    assert "pip install 'reward-kit[run]'" in str(result.exception)


def test_the_progress_bar_and_table_on_a_terminal(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    from rich.console import Console

    from reward_kit.run import run

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    run(
        data=prompts, base_url=fake_openai.url, model="m", out=str(tmp_path / "run"),
        rewards=["tests/run/rewards.py:contains_answer"], samples=2, k=[1, 2],
        console=console, set=["scoring.workers=0"],
    )  # fmt: skip
    text = screen.getvalue()
    assert "generate+score" in text
    assert "8/8" in text
    assert "contains_answer" in text
    assert "pass@2" in text
    assert "requests 8, cache hits 0" in text
