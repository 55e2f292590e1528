"""Typed deploy options: one strict model per target, resolved flag > file > environment > default.

Text (a flag, ``-o KEY=VALUE``, an environment variable) is parsed for the option's type;
reward-kit.toml values must already have it. Every error names the option, what it expects and
where the value came from.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from reward_kit._errors import ConfigurationError
from reward_kit.cli import cli
from reward_kit.deploy import (
    TARGET_NAMES,
    TARGETS,
    CloudRunOptions,
    DeployConfig,
    LambdaOptions,
    LocalOptions,
    TargetOptions,
    get_target,
    options_model,
    resolve_deploy,
)

from ..conftest import ROOT

PROJECT = {"project": "my-proj-1"}


def gcp(**tables: Any) -> DeployConfig:
    return DeployConfig(targets={"gcp-cloud-run": {**PROJECT, **tables}})


def error_of(call: Any) -> str:
    with pytest.raises(ConfigurationError) as raised:
        call()
    return str(raised.value)


# -- text is parsed for the option; the two bugs of the untyped options dict ----------------


@pytest.mark.parametrize(
    ("text", "expected"), [("false", False), ("no", False), ("0", False), ("true", True)]
)
def test_o_rotate_key_text_is_a_boolean(text: str, expected: bool) -> None:
    # The flag --rotate-key was not given (None): -o still sets the option.
    flags = {"project": "my-proj-1", "rotate_key": None, "concurrency": None}
    for target in ("gcp-cloud-run", "aws-lambda"):
        resolved = resolve_deploy(
            target, flags=flags if target == "gcp-cloud-run" else {"rotate_key": None},
            overrides={"rotate_key": text},
        )  # fmt: skip
        assert resolved.options.rotate_key is expected  # type: ignore[attr-defined]


def test_o_concurrency_reaches_the_model_as_a_number() -> None:
    overrides = {"concurrency": "8", "max-instances": "4", "invokers": "user:a@x.io, group:g@x"}
    resolved = resolve_deploy(
        "gcp-cloud-run", flags={"project": "my-proj-1", "concurrency": None}, overrides=overrides
    )
    options = resolved.options
    assert isinstance(options, CloudRunOptions)
    assert (options.concurrency, options.max_instances) == (8, 4)
    assert options.invokers == ("user:a@x.io", "group:g@x")


@pytest.mark.parametrize("value", ['"false"', '"true"', "1", "0"])
def test_a_toml_string_or_number_is_not_a_boolean(value: str) -> None:
    # TOML has booleans: rotate_key = "false" is an error, never bool("false") == True.
    for target in ("gcp-cloud-run", "aws-lambda"):
        config = DeployConfig(targets={target: {**PROJECT, "rotate_key": eval(value)}})
        message = error_of(lambda: resolve_deploy(target, config=config))  # noqa: B023
        assert f"{target}: rotate_key must be true or false, got {eval(value)!r}" in message
        assert f"(from reward-kit.toml [deploy.{target}])" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("concurrency", "8", "an integer 1-1000"),
        ("max_instances", 4.5, "an integer 1-1000"),
        ("min_instances", True, "an integer 0-1000"),
        ("sandbox", "no", "true or false"),
        ("include", "rewards.py", "a list of strings"),
        ("ingress", "public", "one of all, internal, internal-and-cloud-load-balancing"),
        ("memory", 2048, "a string like 512Mi or 1Gi"),
    ],
)
def test_toml_values_must_have_the_options_type(key: str, value: Any, expected: str) -> None:
    message = error_of(lambda: resolve_deploy("gcp-cloud-run", config=gcp(**{key: value})))
    assert f"gcp-cloud-run: {key} must be {expected}, got {value!r}" in message


@pytest.mark.parametrize(
    ("target", "overrides", "message"),
    [
        ("local", {"port": "x"}, "local: port must be an integer 1-65535, got 'x' (from -o port)"),
        ("local", {"port": "70000"}, "port must be an integer 1-65535, got 70000 (from -o port)"),
        ("local", {"network": "none"}, "network must be one of bridge, host, got 'none'"),
        ("local", {"health_timeout": "0"}, "health_timeout must be a number above 0"),
        ("aws-lambda", {"memory": "64"}, "memory must be an integer 128-10240, got 64"),
        ("aws-lambda", {"reserved_concurrency": "-1"}, "an integer 0-100000 or none, got -1"),
        ("aws-lambda", {"architecture": "x86"}, "architecture must be one of x86_64, arm64"),
        ("aws-lambda", {"allow_unauthenticated": "maybe"}, "must be true or false, got 'maybe'"),
    ],
)
def test_o_values_are_checked_and_the_error_says_where(
    target: str, overrides: dict[str, str], message: str
) -> None:
    assert message in error_of(lambda: resolve_deploy(target, overrides=overrides))


def test_reserved_concurrency_none_from_every_source() -> None:
    for source in ({"flags": {"reserved_concurrency": "none"}},
                   {"overrides": {"reserved_concurrency": "None"}},
                   {"config": DeployConfig(common={"reserved_concurrency": "none"})}):  # fmt: skip
        options = resolve_deploy("aws-lambda", **source).options  # type: ignore[arg-type]
        assert isinstance(options, LambdaOptions)
        assert options.reserved_concurrency is None
    assert LambdaOptions().reserved_concurrency == 10


# -- precedence: flag > reward-kit.toml > environment > default -----------------------------


def test_each_source_wins_over_the_next() -> None:
    environ = {"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "us-west-2"}
    file = DeployConfig(common={"memory": 512}, targets={"aws-lambda": {"region": "eu-west-1"}})

    def resolved(**given: Any) -> LambdaOptions:
        options = resolve_deploy("aws-lambda", environ=environ, **given).options
        assert isinstance(options, LambdaOptions)
        return options

    assert resolved().region == "eu-north-1"  # AWS_REGION before AWS_DEFAULT_REGION
    assert resolved(config=file).region == "eu-west-1"
    assert resolved(config=file, flags={"region": "ap-south-1"}).region == "ap-south-1"
    assert resolved(config=file, overrides={"region": "ca-central-1"}).region == "ca-central-1"
    assert (resolved().memory, resolved(config=file).memory) == (1024, 512)
    assert resolved(config=file, flags={"memory": "2048"}).memory == 2048
    assert resolve_deploy("local", environ={"DOCKER_HOST": "unix:///x.sock"}).options == (
        LocalOptions(docker_host="unix:///x.sock")
    )


def test_a_flag_and_o_for_the_same_option_is_refused() -> None:
    message = error_of(lambda: resolve_deploy("local", flags={"port": 9000},
                                              overrides={"port": "9001"}))  # fmt: skip
    assert message == "--port and -o port both set port; give it once"


def test_build_table_is_the_lowest_config_layer() -> None:
    config = DeployConfig(build={"sandbox": False}, targets={"local": {"sandbox": True}})
    assert resolve_deploy("local", config=config).options.sandbox is True
    assert resolve_deploy(None, config=config).options.sandbox is False  # rk build: [build]
    assert resolve_deploy(None, config=config, flags={"sandbox": True}).options.sandbox is True


# -- each target takes its own options ------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "key"),
    [("aws-lambda", "concurrency"), ("local", "region"), ("local", "rotate_key"),
     ("gcp-cloud-run", "reserved_concurrency"), ("local", "invokers")],
)  # fmt: skip
def test_an_option_the_target_does_not_take_is_refused(target: str, key: str) -> None:
    flags = {**PROJECT, key: "1"} if target == "gcp-cloud-run" else {key: "1"}
    message = error_of(lambda: resolve_deploy(target, flags=flags))
    assert f"{target}: {key} (from --{key.replace('_', '-')}) is not an option of {target}" in (
        message
    )
    for option in options_model(target).model_fields:
        assert option in message.split("its options: ")[1]


def test_common_table_options_go_to_the_targets_that_take_them() -> None:
    config = DeployConfig(common={"region": "eu-west-1", "port": 9000, "name": "n"})
    local = resolve_deploy("local", config=config)
    assert (local.options.port, local.defaults.name) == (9000, "n")  # type: ignore[attr-defined]
    assert resolve_deploy("aws-lambda", config=config).options.region == "eu-west-1"  # type: ignore[attr-defined]
    typo = DeployConfig(common={"regoin": "eu-west-1"})
    assert "regoin (from reward-kit.toml [deploy]) is not an option of local" in error_of(
        lambda: resolve_deploy("local", config=typo)
    )


def test_deploy_settings_in_the_file_are_typed_too() -> None:
    config = DeployConfig(common={"auth": "iam", "requirements": ["numpy"]})
    assert "rk deploy: auth must be one of api-key, google-iam, aws-iam, mtls, none, got 'iam'" in (
        error_of(lambda: resolve_deploy("local", config=config))
    )


def test_required_and_pattern_checked_options(monkeypatch: pytest.MonkeyPatch) -> None:
    # No Application Default Credentials either (tests/deploy/test_gcp_project.py has the rest).
    monkeypatch.setattr(
        "reward_kit.deploy.targets.gcp_cloud_run._options.default_project", lambda environ: None
    )
    assert error_of(lambda: resolve_deploy("gcp-cloud-run")).startswith(
        "gcp-cloud-run needs a project: pass --project, set project under "
        "[deploy.gcp-cloud-run] in reward-kit.toml, set $GOOGLE_CLOUD_PROJECT or "
        "$GCLOUD_PROJECT, or use a $GOOGLE_APPLICATION_CREDENTIALS key file that names one, "
        "set $CLOUDSDK_CORE_PROJECT or gcloud's default project"
    )
    assert "'Bad_Project' is not a Google Cloud project ID (from --project)" in error_of(
        lambda: resolve_deploy("gcp-cloud-run", flags={"project": "Bad_Project"})
    )
    assert "min_instances (5) is above max_instances (2)" in error_of(
        lambda: resolve_deploy("gcp-cloud-run", config=gcp(min_instances=5, max_instances=2))
    )
    assert "'mars' is not a region like us-east-1 (from $AWS_REGION)" in error_of(
        lambda: resolve_deploy("aws-lambda", environ={"AWS_REGION": "mars"})
    )


# -- the models themselves --------------------------------------------------------------------


def test_models_are_strict_frozen_and_raise_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"aws-lambda: rotate_key must be true or false"):
        LambdaOptions(rotate_key="false")
    with pytest.raises(ConfigurationError, match=r"local: colour is not an option of local"):
        LocalOptions(colour="red")
    options = LocalOptions(port=9000)
    with pytest.raises(Exception, match="frozen"):
        options.port = 1  # type: ignore[misc]


def test_coerce_carries_what_was_set_into_another_model() -> None:
    generic = TargetOptions(include=("a.py",), sandbox=False)
    local = LocalOptions.coerce(generic, environ={})
    assert (local.include, local.sandbox, local.port) == (("a.py",), False, 8080)
    with pytest.raises(ConfigurationError, match=r"port \(from LocalOptions\) is not an option"):
        LambdaOptions.coerce(LocalOptions(port=9000), environ={})


def test_every_target_declares_its_model_and_artifact() -> None:
    assert tuple(TARGETS) == TARGET_NAMES
    for name in TARGET_NAMES:
        target = get_target(name)
        assert target.name == name
        assert target.options_model is options_model(name)
        assert target.options_model.target == name
        assert target.artifact.value in ("docker", "lambda-zip")


def test_every_option_is_documented() -> None:
    # As a flag where rk deploy has one (--invoker for invokers), else by its name.
    up = cli.commands["deploy"].commands["up"]  # type: ignore[attr-defined]
    flags = {param.name: param.opts[0] for param in up.params}
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name in TARGET_NAMES:
        for option in options_model(name).model_fields:
            spelled = re.escape(flags.get(option, option))
            assert re.search(rf"`{spelled}[ `=/]", docs), (name, option)
