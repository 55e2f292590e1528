"""Settings resolve in one place: flag > RK_* env > default, with clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reward_kit import ConfigurationError
from reward_kit.service import ServeSettings
from reward_kit.service._docs import COMMAND, render_tables, settings_table
from reward_kit.service._docs import main as docs_main

from ..conftest import ROOT


def test_defaults() -> None:
    settings = ServeSettings.resolve({}, {})
    assert (settings.host, settings.port, settings.timeout) == ("127.0.0.1", 8000, 30.0)
    assert settings.is_loopback
    assert settings.workers is None


def test_flag_beats_environment_beats_default() -> None:
    env = {
        "RK_PORT": "9001",
        "RK_WORKERS": "3",
        "RK_API_KEYS": "a 0123456789abcdef, b sha256:x",
        "RK_ALLOW_UNAUTHENTICATED": "yes",
    }
    settings = ServeSettings.resolve({"port": 9100, "workers": None, "targets": ()}, env)
    assert settings.port == 9100
    assert settings.workers == 3
    assert settings.api_keys == ("a 0123456789abcdef", "b sha256:x")
    assert settings.allow_unauthenticated is True


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"RK_PORT": "eighty"}, "RK_PORT='eighty' is not valid"),
        ({"RK_TIMEOUT": "-1"}, "RK_TIMEOUT='-1' is not valid: must be a positive number"),
        ({"RK_ALLOW_UNAUTHENTICATED": "maybe"}, "must be true or false"),
        ({"RK_PORT": "70000"}, "port must be 0-65535"),
        ({"RK_TIMEOUT": "500"}, r"timeout \(500s\) is above max_timeout"),
        ({"RK_LOG_LEVEL": "loud"}, "log_level must be one of"),
        ({"RK_MEMORY_LIMIT_MB": "8"}, "memory_limit_mb must be"),
        ({"RK_HEADER_TIMEOUT": "0"}, "RK_HEADER_TIMEOUT='0' is not valid"),
        ({"RK_BODY_TIMEOUT": "inf"}, "RK_BODY_TIMEOUT='inf' is not valid"),
        ({"RK_MAX_CONNECTIONS": "2"}, "max_connections must be at least 8"),
        ({"RK_ALLOWED_HOSTS": "https://rk.example.org"}, "allowed_hosts: 'https://rk.example.org'"),
        ({"RK_ALLOWED_HOSTS": "rk.example.org:8000"}, "no scheme, no port"),
        ({"RK_FORWARDED_ALLOW_IPS": "10.0.0.1,proxy"}, "forwarded_allow_ips: 'proxy' is not"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        ServeSettings.resolve({}, env)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.2", True), ("0.0.0.0", False), ("example.org", False)],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert ServeSettings(host=host).is_loopback is loopback


def test_http_settings_from_the_environment() -> None:
    env = {
        "RK_ALLOWED_HOSTS": "rk.internal, *.corp.example,[::1]",
        "RK_FORWARDED_ALLOW_IPS": "10.0.0.0/8,127.0.0.1",
        "RK_HEADER_TIMEOUT": "2.5",
        "RK_MAX_CONNECTIONS": "64",
    }
    settings = ServeSettings.resolve({"body_timeout": 9.0}, env)
    assert settings.allowed_hosts == ("rk.internal", "*.corp.example", "[::1]")
    assert settings.forwarded_allow_ips == ("10.0.0.0/8", "127.0.0.1")
    assert (settings.header_timeout, settings.body_timeout) == (2.5, 9.0)
    assert settings.max_connections == 64
    defaults = ServeSettings()
    assert (defaults.allowed_hosts, defaults.forwarded_allow_ips) == ((), ())


# --- each setting declared once: its flag, variable, default and help come from its field ---


def test_every_field_is_a_described_setting() -> None:
    specs = ServeSettings.describe()
    assert [s.name for s in specs] == [f.name for f in dataclasses.fields(ServeSettings)]
    variables = [s.env for s in specs]
    flags = [s.flag for s in specs if s.flag is not None]
    assert len(set(variables)) == len(variables)
    assert len(set(flags)) == len(flags)
    for spec in specs:
        assert spec.env.startswith("RK_"), spec.name
        assert spec.help.endswith("."), spec.name
        assert spec.section in ("server", "auth"), spec.name
        assert spec.flag is None or spec.flag.startswith("--"), spec.name
        assert spec.default == getattr(ServeSettings(), spec.name), spec.name


@pytest.mark.parametrize("page", ["http-api.md", "auth.md"])
def test_the_docs_settings_tables_are_generated(page: str) -> None:
    """A changed setting changes the docs: the tables are the generated ones, word for word."""
    text = (ROOT / "docs" / page).read_text()
    assert text.count("<!-- BEGIN GENERATED rk-serve settings") == 1, (
        f"docs/{page} lost its markers"
    )
    assert render_tables(text) == text, (
        f"the settings table in docs/{page} differs from ServeSettings; regenerate it: {COMMAND}"
    )


def test_every_setting_is_in_one_docs_table() -> None:
    documented = "".join((ROOT / "docs" / p).read_text() for p in ("http-api.md", "auth.md"))
    for spec in ServeSettings.describe():
        assert documented.count(f"| `{spec.env}` |") == 1, spec.env


def test_a_table_renders_flags_defaults_and_list_rules() -> None:
    table = settings_table("auth")
    assert (
        "| `--mtls-allow-subject` | `RK_MTLS_ALLOWED_SUBJECTS` | any | Allowed client certificate"
        in table
    )
    assert "the variable is semicolon-separated" in table
    assert "|  | `RK_API_KEYS` | none |" in table  # no flag: secrets stay off command lines
    assert "spiffe://rl-lab/\\*" in table  # '*' escaped, not emphasis
    assert "| `--metrics`, `--no-metrics` | `RK_METRICS` | on |" in settings_table("server")
    with pytest.raises(ValueError, match="unknown settings section 'http'"):
        settings_table("http")


def test_resolve_refuses_a_flag_that_is_no_setting() -> None:
    # A misspelt key would otherwise be dropped silently and the default used.
    with pytest.raises(TypeError, match="unknown settings: worker"):
        ServeSettings.resolve({"worker": 2}, {})


@pytest.mark.parametrize(
    "name", ["timeout", "max_timeout", "shutdown_grace", "header_timeout", "body_timeout"]
)
@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan")])
def test_durations_are_positive_however_they_are_given(name: str, value: float) -> None:
    values = {name: value, "max_timeout": 1e9} if name == "timeout" else {name: value}
    with pytest.raises(ConfigurationError, match=f"{name} must be a positive number of seconds"):
        ServeSettings(**values)


def test_the_regenerate_command_rewrites_only_the_tables(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    start = "<!-- BEGIN GENERATED rk-serve settings (server): regenerate -->"
    page.write_text(f"# Intro\n\n{start}\n| stale |\n<!-- END GENERATED -->\n\nOutro.\n")
    assert docs_main([str(page)]) == 0
    assert page.read_text() == (
        f"# Intro\n\n{start}\n\n{settings_table('server')}\n<!-- END GENERATED -->\n\nOutro.\n"
    )
    plain = tmp_path / "plain.md"
    plain.write_text("no table here\n")
    assert docs_main([str(plain)]) == 1
