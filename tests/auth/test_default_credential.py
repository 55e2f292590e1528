"""A client given no ``auth`` uses ``default_credential()``: ``RK_API_KEY`` and friends, then
``auth.ini`` (``RK_AUTH_FILE`` or ``~/.config/reward-kit/auth.ini``); ``auth=False`` and
``NoAuth()`` opt out. Checked against a real server that requires a key."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reward_kit._errors import AuthenticationError, ConfigurationError
from reward_kit.sdk import AsyncEvaluatorClient, EvaluatorClient, trl_reward
from reward_kit.sdk.auth import ApiKey, NoAuth, default_credential, from_profile
from reward_kit.sdk.verl import compute_score_fn
from reward_kit.service import create_app

from .conftest import LeakGuard, base_settings

pytestmark = pytest.mark.timeout(120)

KEY = "rk_default-key-0123456789abcdef"
LAB_KEY = "rk_lab-profile-key-0123456789ab"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A fresh HOME, so neither the developer's auth.ini nor their XDG dir is read.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("RK_AUTH_FILE", raising=False)  # should tests/conftest.py pin one
    return tmp_path


@pytest.fixture
def server(live_server: Any, leak_guard: LeakGuard, home: Path) -> Iterator[str]:
    leak_guard.add(KEY, LAB_KEY)
    settings = base_settings(api_keys=(f"default {KEY}", f"lab {LAB_KEY}"))
    with live_server(create_app(settings=settings)) as running:
        yield running.url


def identities(guard: LeakGuard) -> list[str]:
    return [line.split("auth ok: ")[1].split()[0] for line in guard.lines if "auth ok: " in line]


def write_ini(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_no_auth_and_no_configuration_sends_nothing(server: str) -> None:
    with EvaluatorClient(server, max_retries=0) as client:
        assert client.config.auth is None
        with pytest.raises(AuthenticationError):
            client.functions()


def test_rk_api_key_from_the_environment(
    server: str, monkeypatch: pytest.MonkeyPatch, leak_guard: LeakGuard
) -> None:
    monkeypatch.setenv("RK_API_KEY", KEY)
    with EvaluatorClient(server, max_retries=0) as client:
        assert client.functions()

    async def run() -> list[Any]:
        async with AsyncEvaluatorClient(server, max_retries=0) as client:
            return await client.functions()

    assert asyncio.run(run())
    compute_score = compute_score_fn(server, function="good")
    try:
        assert compute_score("d", "4", "4")["score"] == 1.0
    finally:
        compute_score.close()
    # Four requests: the verl adapter reads the function's declared metrics (GET /functions)
    # before its first sample; every one carries the key from the environment.
    assert identities(leak_guard) == ["api-key:default"] * 4
    # The explicit opt-outs send nothing, whatever the environment says.
    for none in (False, NoAuth()):
        with EvaluatorClient(server, auth=none, max_retries=0) as client:
            assert client.config.auth is None
            with pytest.raises(AuthenticationError):
                client.functions()


def test_rk_api_key_file(server: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "key").write_text(KEY + "\n")
    monkeypatch.setenv("RK_API_KEY_FILE", str(home / "key"))
    with EvaluatorClient(server, max_retries=0) as client:
        assert client.functions()


def test_auth_ini_in_home(
    server: str, home: Path, monkeypatch: pytest.MonkeyPatch, leak_guard: LeakGuard
) -> None:
    (home / "key").write_text(KEY)
    write_ini(
        home / ".config" / "reward-kit" / "auth.ini",
        f"""
        [default]
        type = api-key
        api_key_file = {home / "key"}

        [lab]
        type = api-key
        api_key_env = LAB_KEY
        """,
    )
    with EvaluatorClient(server, max_retries=0) as client:
        assert client.functions()
    monkeypatch.setenv("RK_AUTH_PROFILE", "lab")
    monkeypatch.setenv("LAB_KEY", LAB_KEY)

    async def run() -> list[Any]:
        async with AsyncEvaluatorClient(server, max_retries=0) as client:
            return await client.functions()

    assert asyncio.run(run())
    assert identities(leak_guard) == ["api-key:default", "api-key:lab"]


def test_rk_auth_file_and_precedence(
    server: str, home: Path, monkeypatch: pytest.MonkeyPatch, leak_guard: LeakGuard
) -> None:
    ini = write_ini(
        home / "elsewhere" / "auth.ini",
        f"""
        [default]
        type = api-key
        api_key = {LAB_KEY}
        """,
    )
    monkeypatch.setenv("RK_AUTH_FILE", str(ini))
    with EvaluatorClient(server, max_retries=0) as client:
        assert client.functions()
    monkeypatch.setenv("RK_API_KEY", KEY)  # the environment wins over [default]
    with EvaluatorClient(server, max_retries=0) as client:
        assert client.functions()
    assert identities(leak_guard) == ["api-key:lab", "api-key:default"]


def test_an_auth_ini_without_default_is_not_an_error(
    server: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = write_ini(home / "auth.ini", "[lab]\ntype = api-key\napi_key_env = LAB_KEY\n")
    monkeypatch.setenv("RK_AUTH_FILE", str(ini))
    assert default_credential() is None
    monkeypatch.setenv("RK_AUTH_PROFILE", "missing")
    with pytest.raises(ConfigurationError, match=r"no profile \[missing\]"):
        EvaluatorClient(server)


def test_read_when_a_client_is_made_not_at_import(home: Path) -> None:
    broken = write_ini(home / "auth.ini", "[default]\ntype = kerberos\n")
    env = {**os.environ, "RK_AUTH_FILE": str(broken), "HOME": str(home)}
    code = (
        "import reward_kit.sdk, reward_kit.sdk.auth, reward_kit.sdk.verl\n"
        "try:\n"
        "    reward_kit.sdk.EvaluatorClient('http://127.0.0.1:9')\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ConfigurationError" in out.stdout
    assert "unknown credential type 'kerberos'" in out.stdout


def test_explicit_auth_wins(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_API_KEY", "rk_not-this-one-0123456789")
    with EvaluatorClient(server, auth=ApiKey(KEY), max_retries=0) as client:
        assert client.functions()
    with EvaluatorClient(server, auth=KEY, max_retries=0) as client:
        assert client.functions()
    with pytest.raises(TypeError, match="auth=True"):
        EvaluatorClient(server, auth=True)  # type: ignore[arg-type]


# -- the implicit credential goes only where it cannot be read on the way ----------------------

NO_FILE = {"RK_API_KEY": KEY, "RK_AUTH_FILE": "/nonexistent/auth.ini"}


def sends(credential: httpx.Auth | None) -> str | None:
    """The Authorization header a credential puts on a request (None: no credential)."""
    if credential is None:
        return None
    request = httpx.Request("GET", "https://evaluator.example.com/health")
    next(credential.auth_flow(request))
    value = request.headers.get("authorization")
    return None if value is None else str(value)


@pytest.mark.parametrize(
    "url",
    [
        "https://evaluator.example.com",
        "https://10.0.0.5:8443/base",
        "http://127.0.0.1:8000",
        "http://127.42.0.9:8000",
        "http://[::1]:8000",
        "http://localhost:8000/",
        "http://LOCALHOST:8000",
    ],
)
def test_the_default_credential_goes_to_https_and_loopback(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="reward_kit.sdk"):
        assert sends(default_credential(NO_FILE, url=url)) == f"Bearer {KEY}"
    assert caplog.records == []


@pytest.mark.parametrize(
    "url",
    [
        "http://evaluator.internal:8000",
        "http://10.0.0.5:8000",
        "http://localhost.evil.example:8000",
        "http://127.0.0.1.nip.io:8000",
        "http://[2001:db8::1]:8000",
    ],
)
def test_not_to_plain_http_elsewhere_and_says_how_to_send_it(
    url: str, caplog: pytest.LogCaptureFixture, leak_guard: LeakGuard
) -> None:
    leak_guard.add(KEY)
    with caplog.at_level(logging.WARNING, logger="reward_kit.sdk"):
        assert default_credential(NO_FILE, url=url) is None
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "pass auth= explicitly" in record.getMessage()
    assert "RK_API_KEY" in record.getMessage()
    # Without a URL (the old call) nothing is checked.
    assert sends(default_credential(NO_FILE)) == f"Bearer {KEY}"


def _recording() -> tuple[httpx.MockTransport, list[str | None]]:
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"functions": []})

    return httpx.MockTransport(handler), sent


def test_clients_hold_back_the_default_credential_on_plain_http(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, leak_guard: LeakGuard
) -> None:
    leak_guard.add(KEY)
    monkeypatch.setenv("RK_API_KEY", KEY)
    transport, sent = _recording()
    remote = "http://evaluator.internal:8000"
    with caplog.at_level(logging.WARNING, logger="reward_kit.sdk"):
        with EvaluatorClient(remote, transport=transport) as client:
            assert client.config.auth is None
            client.functions()
        assert trl_reward(remote, function="f").config.auth is None
        scorer = compute_score_fn(remote, function="f")
        assert scorer.config.auth is None

        async def run() -> None:
            async with AsyncEvaluatorClient(remote) as client:
                assert client.config.auth is None

        asyncio.run(run())
    assert len([r for r in caplog.records if "pass auth= explicitly" in r.getMessage()]) == 4
    # An explicit auth= is always honoured, whatever the scheme and host.
    with EvaluatorClient(remote, auth=KEY, transport=transport) as client:
        client.functions()
    with EvaluatorClient("https://evaluator.internal", transport=transport) as client:
        client.functions()
    assert sent == [None, f"Bearer {KEY}", f"Bearer {KEY}"]


def test_a_profile_url_scopes_its_credential(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ini = write_ini(
        home / "auth.ini",
        f"""
        [default]
        type = api-key
        api_key = {KEY}
        url = http://evaluator.internal:8000/team

        [lab]
        type = api-key
        api_key = {LAB_KEY}
        url = https://lab.example.com
        """,
    )
    env = {"RK_AUTH_FILE": str(ini)}
    inside = [
        "http://evaluator.internal:8000/team",
        "http://evaluator.internal:8000/team/",
        "http://EVALUATOR.internal:8000/team/v1",
    ]
    outside = [
        "http://evaluator.internal:8000/teamwork",
        "http://evaluator.internal:8001/team",
        "https://evaluator.internal:8000/team",
        "http://evaluator.internal.evil.example:8000/team",
        "http://127.0.0.1:8000/team",
        "https://evaluator.example.com",
    ]
    with caplog.at_level(logging.WARNING, logger="reward_kit.sdk"):
        # Its own URL even over plain http: the profile says where the credential belongs.
        for url in inside:
            assert sends(default_credential(env, url=url)) == f"Bearer {KEY}", url
        for url in outside:
            assert default_credential(env, url=url) is None, url
    assert caplog.records == []  # another evaluator's profile is skipped quietly
    lab = {**env, "RK_AUTH_PROFILE": "lab"}
    assert sends(default_credential(lab, url="https://lab.example.com/v1")) == f"Bearer {LAB_KEY}"
    # Not lab's URL: the next sources are asked (here [default], which is for its own URL).
    assert default_credential(lab, url="https://prod.example.com") is None
    assert (
        sends(default_credential(lab, url="http://evaluator.internal:8000/team")) == f"Bearer {KEY}"
    )
    # Passed explicitly, a profile is sent wherever it is told.
    assert sends(from_profile("lab", path=ini)) == f"Bearer {LAB_KEY}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("evaluator.internal", "expected an http"),
        ("ftp://evaluator.internal", "expected an http"),
        ("https://user:pa55word-x@evaluator.internal", "must not hold a user or password"),
        ("https://evaluator.internal/?x=1", "expected no query"),
    ],
)
def test_a_bad_profile_url_is_a_clear_error(home: Path, value: str, message: str) -> None:
    ini = write_ini(
        home / "auth.ini", f"[default]\ntype = api-key\napi_key = {KEY}\nurl = {value}\n"
    )
    env = {"RK_AUTH_FILE": str(ini)}
    with pytest.raises(ConfigurationError, match=rf"\[default\]: url: {message}") as caught:
        default_credential(env, url="https://evaluator.internal")
    assert "pa55word-x" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="url: "):
        from_profile(path=ini)
