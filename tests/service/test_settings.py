"""Settings resolve in one place: flag > RK_* env > default, with clear errors."""

from __future__ import annotations

import pytest

from reward_kit import ConfigurationError
from reward_kit.service import ServeSettings


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
        ({"RK_MEMORY_LIMIT_MB": "8"}, "memory_limit_mb must be at least 64"),
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
