"""reward-kit.toml / [tool.reward-kit]: per-target deploy defaults, flags winning, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from reward_kit._errors import ConfigurationError
from reward_kit.deploy._config import load_config, merge_options

TOML = """
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
    assert load_config("gcp-cloud-run", start=tmp_path) == {
        "auth": "google-iam",
        "memory": "2Gi",
        "project": "my-proj-1",
        "max_instances": 4,  # dashes become the option names' underscores
    }
    assert load_config("aws-lambda", start=tmp_path) == {
        "auth": "google-iam",
        "memory": "1Gi",
        "region": "eu-west-1",
    }


def test_found_from_a_subfolder_and_reward_kit_toml_beats_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.reward-kit.deploy.local]\nport = 9000\n[project]\nname = "x"\n'
    )
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert load_config("local", start=nested) == {"port": 9000}
    (nested / "reward-kit.toml").write_text("[deploy.local]\nport = 9100\n")
    assert load_config("local", start=nested) == {"port": 9100}


def test_explicit_path_and_pyproject_without_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config("local", start=tmp_path) == {}
    custom = tmp_path / "deploy.toml"
    custom.write_text("[deploy.local]\nport = 1234\n")
    assert load_config("local", path=custom) == {"port": 1234}
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_config("local", path=tmp_path / "missing.toml")


@pytest.mark.parametrize("key", ["api_key", "secret", "aws-secret-access-key", "token"])
def test_secrets_are_refused(tmp_path: Path, key: str) -> None:
    (tmp_path / "reward-kit.toml").write_text(f'[deploy.aws-lambda]\n{key} = "abc"\n')
    with pytest.raises(ConfigurationError, match="looks like a secret; secrets never go in"):
        load_config("aws-lambda", start=tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "reward-kit.toml").write_text("[deploy\n")
    with pytest.raises(ConfigurationError, match=r"reward-kit\.toml is not valid TOML"):
        load_config("local", start=tmp_path)
    (tmp_path / "reward-kit.toml").write_text('deploy = "x"\n')
    with pytest.raises(ConfigurationError, match="'deploy' must be a table"):
        load_config("local", start=tmp_path)


def test_flags_win_unless_not_given() -> None:
    config = {"region": "eu-west-1", "invokers": ["a"], "memory": 512}
    flags = {"region": "us-east-1", "invokers": (), "memory": None, "timeout": 30}
    assert merge_options(config, flags) == {
        "region": "us-east-1",
        "invokers": ["a"],
        "memory": 512,
        "timeout": 30,
    }


@pytest.mark.parametrize("auth", ["api-key", "google-iam", "aws-iam", "none"])
def test_every_sdk_snippet_is_valid_python_naming_its_credential(auth: str) -> None:
    from reward_kit.deploy._common import sdk_snippet

    text = sdk_snippet("https://e.example", auth, region="eu-west-1", max_batch_bytes=5_000_000)
    compile(text, "snippet", "exec")
    credential = {"api-key": "ApiKey(", "google-iam": "GoogleIdToken(", "aws-iam": "AwsSigV4("}
    assert ("auth=" in text) is (auth != "none")
    if auth in credential:
        assert credential[auth] in text
