"""reward-kit.toml / [tool.reward-kit]: per-target deploy defaults, found upwards, no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reward_kit._errors import ConfigurationError
from reward_kit.deploy import (
    TARGET_NAMES,
    CloudRunOptions,
    LambdaOptions,
    load_config,
    resolve_deploy,
)

from ..conftest import ROOT

TOML = """
[build]
include = ["rewards.py", "helpers/"]

[deploy]
auth = "google-iam"
memory = "1Gi"

[deploy.gcp-cloud-run]
project = "my-proj-1"
max-instances = 4
memory = "2Gi"

[deploy.aws-lambda]
region = "eu-west-1"
"""


def test_target_table_overlays_the_common_one(tmp_path: Path) -> None:
    (tmp_path / "reward-kit.toml").write_text(TOML)
    config = load_config(start=tmp_path)
    assert config.origin == tmp_path / "reward-kit.toml"
    assert config.table("gcp-cloud-run") == {
        "auth": "google-iam",
        "memory": "2Gi",
        "project": "my-proj-1",
        "max_instances": 4,  # dashes become the option names' underscores
    }
    assert config.table("aws-lambda") == {
        "auth": "google-iam",
        "memory": "1Gi",
        "region": "eu-west-1",
    }
    # [build] paths are relative to the file, wherever rk runs.
    assert config.build["include"] == [str(tmp_path / "rewards.py"), str(tmp_path / "helpers/")]
    assert config.given("local")["include"].source == f"{tmp_path / 'reward-kit.toml'} [build]"


def test_found_from_a_subfolder_and_reward_kit_toml_beats_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.reward-kit.deploy.local]\nport = 9000\n[project]\nname = "x"\n'
    )
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert load_config(start=nested).table("local") == {"port": 9000}
    (nested / "reward-kit.toml").write_text("[deploy.local]\nport = 9100\n")
    assert load_config(start=nested).table("local") == {"port": 9100}


def test_explicit_path_and_pyproject_without_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config(start=tmp_path).table("local") == {}
    custom = tmp_path / "deploy.toml"
    custom.write_text("[deploy.local]\nport = 1234\n")
    assert load_config(path=custom).table("local") == {"port": 1234}
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_config(path=tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "table", ["[deploy.aws-lambda]", "[deploy]", "[build]", "[deploy.not-a-target]"]
)
@pytest.mark.parametrize("key", ["api_key", "secret", "aws-secret-access-key", "token"])
def test_secrets_are_refused_in_every_table(tmp_path: Path, table: str, key: str) -> None:
    (tmp_path / "reward-kit.toml").write_text(f'{table}\n{key} = "abc"\n')
    with pytest.raises(ConfigurationError, match="looks like a secret; secrets never go in"):
        load_config(start=tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "reward-kit.toml").write_text("[deploy\n")
    with pytest.raises(ConfigurationError, match=r"reward-kit\.toml is not valid TOML"):
        load_config(start=tmp_path)
    (tmp_path / "reward-kit.toml").write_text('deploy = "x"\n')
    with pytest.raises(ConfigurationError, match="'deploy' must be a table"):
        load_config(start=tmp_path)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ('colour = "red"', "unknown [build] option 'colour'; known: include, sandbox"),
        ('include = "rewards.py"', "[build] include must be a list of paths"),
    ],
)
def test_build_table_takes_include_and_sandbox_only(
    tmp_path: Path, build: str, message: str
) -> None:
    (tmp_path / "reward-kit.toml").write_text(f"[build]\n{build}\n")
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_config(start=tmp_path)


def test_the_documented_config_file_is_valid_for_every_target(tmp_path: Path) -> None:
    # docs/deploy.md's example, read as rk deploy reads it, through each target's model.
    [example] = re.findall(r"^```toml\n(.*?)^```", (ROOT / "docs" / "deploy.md").read_text(),
                           flags=re.S | re.M)  # fmt: skip
    (tmp_path / "reward-kit.toml").write_text(example)
    config = load_config(start=tmp_path)
    for target in TARGET_NAMES:
        resolved = resolve_deploy(target, config=config)
        assert resolved.defaults.name == "math-rewards"
    cloud_run = resolve_deploy("gcp-cloud-run", config=config).options
    assert isinstance(cloud_run, CloudRunOptions)
    assert (cloud_run.project, cloud_run.max_instances, cloud_run.sandbox) == ("my-proj", 5, False)
    aws = resolve_deploy("aws-lambda", config=config).options
    assert isinstance(aws, LambdaOptions)
    assert (aws.memory, aws.reserved_concurrency) == (2048, 20)
