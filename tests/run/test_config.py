"""rk run's config: TOML and YAML files, flags, --set overrides, errors that name the key, and
--from manifest.json reproducing a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reward_kit import ConfigurationError
from reward_kit.cli import cli
from reward_kit.run import build_config

from ._fake_openai import FakeOpenAI
from .conftest import REWARDS, read_lines


def rk_run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["run", *args, "--quiet", "--set", "scoring.workers=0"])


def config_file(tmp_path: Path, server: FakeOpenAI, data: str, suffix: str = ".toml") -> str:
    if suffix == ".toml":
        text = f"""
samples = 2
k = [1, 2]
seed = 3

[data]
path = "{data}"

[model]
name = "toml-model"
base_url = "{server.url}"
temperature = 0.5

[[rewards]]
target = "{REWARDS}:contains_answer"

[limits]
max_concurrency = 4
"""
    else:
        text = f"""
samples: 2
k: [1, 2]
seed: 3
data: {{path: "{data}"}}
model: {{name: toml-model, base_url: "{server.url}", temperature: 0.5}}
rewards:
  - target: "{REWARDS}:contains_answer"
limits: {{max_concurrency: 4}}
"""
    path = tmp_path / f"run{suffix}"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_a_config_file_with_flags_and_sets_on_top(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path, suffix: str
) -> None:
    config = config_file(tmp_path, fake_openai, prompts, suffix)
    out = tmp_path / "run"
    result = rk_run(
        config, "--out", str(out), "-n", "3", "--set", "model.temperature=0.25",
        "--set", "k=1,3", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["samples"] == 12
    assert set(summary["rewards"]["contains_answer"]["pass_at_k"]) == {
        "1",
        "3",
    }
    assert {b["temperature"] for b in fake_openai.requests} == {0.25}
    assert {b["model"] for b in fake_openai.requests} == {"toml-model"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["samples"] == 3
    assert manifest["config"]["seed"] == 3
    assert manifest["config"]["limits"]["max_concurrency"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "model.temprature=0.5"], "config key 'model.temprature': unknown key"),
        (["--set", "limits.max_concurrency=0"], "config key 'limits.max_concurrency'"),
        (["--set", "model.temperature=warm"], "config key 'model.temperature'"),
        (["--set", "model.api_key_env=sk-abc"], "name of an environment variable"),
        (["--set", "samples"], "expected KEY.PATH=VALUE"),
        (["-n", "2", "--k", "1,4"], "config key 'k': pass@4 needs at least 4 samples"),
        (["--set", "rewards.5.target=x.py"], "config key 'rewards.5'"),
    ],
)
def test_config_errors_name_the_key(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path, args: list[str], message: str
) -> None:
    config = config_file(tmp_path, fake_openai, prompts)
    result = rk_run(config, "--out", str(tmp_path / "run"), *args)
    assert result.exit_code != 0
    assert message in str(result.exception) + result.output
    assert fake_openai.count == 0


def test_a_misspelt_key_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[model]\nname = "m"\nbase_ulr = "http://x"\n')
    with pytest.raises(ConfigurationError, match=r"'model.base_ulr': unknown key.*base_url"):
        build_config(path)
    path.write_text("[model\n")
    with pytest.raises(ConfigurationError, match="is not valid"):
        build_config(path)


def test_missing_pieces_are_clear_errors(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    no_rewards = rk_run("--data", prompts, "--base-url", fake_openai.url, "--model", "m",
                        "--out", str(tmp_path / "a"))  # fmt: skip
    assert "config key 'rewards'" in str(no_rewards.exception)
    no_url = rk_run("--data", prompts, "--model", "gpt-x", "--reward", REWARDS,
                    "--out", str(tmp_path / "b"))  # fmt: skip
    assert "config key 'model.base_url'" in str(no_url.exception)
    no_data = rk_run(
        "--base-url", fake_openai.url, "--reward", REWARDS, "--out", str(tmp_path / "c")
    )
    assert "config key 'data.path'" in str(no_data.exception)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"nothing": 1}\n')
    bad_row = rk_run("--data", str(bad), "--base-url", fake_openai.url, "--reward", REWARDS,
                     "--out", str(tmp_path / "d"))  # fmt: skip
    assert "data line 2: needs 'prompt'" in str(bad_row.exception)
    assert fake_openai.count == 0


def test_from_manifest_reproduces_the_run(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, fake_openai, prompts)
    first = rk_run(config, "--out", str(tmp_path / "first"), "--cache", "off")
    assert first.exit_code == 0, first.output
    again = rk_run(
        "--from", str(tmp_path / "first" / "manifest.json"), "--out", str(tmp_path / "again")
    )
    assert again.exit_code == 0, again.output
    key = lambda r: (r["prompt_id"], r["sample_index"])  # noqa: E731
    one = sorted(read_lines(tmp_path / "first" / "results.jsonl"), key=key)
    two = sorted(read_lines(tmp_path / "again" / "results.jsonl"), key=key)
    assert [(r["seed"], r["response"], r["rewards"]) for r in one] == [
        (r["seed"], r["response"], r["rewards"]) for r in two
    ]
    summaries = [
        json.loads((tmp_path / d / "summary.json").read_text()) for d in ("first", "again")
    ]
    assert summaries[0]["rewards"] == summaries[1]["rewards"]
    # The same requests, seeds included: the endpoint saw each body twice.
    bodies = sorted(json.dumps(b, sort_keys=True) for b in fake_openai.requests)
    assert bodies[0::2] == bodies[1::2]


def test_reward_url_syntax() -> None:
    config = build_config({}, flags={"rewards": ["http://127.0.0.1:8000#exact", "a.py:fn"]})
    assert config.rewards[0].url == "http://127.0.0.1:8000"
    assert config.rewards[0].function == "exact"
    assert config.rewards[1].target == "a.py:fn"
    with pytest.raises(ConfigurationError, match="'url' needs 'function'"):
        build_config({}, flags={"rewards": ["http://127.0.0.1:8000"]})
