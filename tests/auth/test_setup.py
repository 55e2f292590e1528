"""Configuration surface: settings and env, `rk keys`, `rk serve` TLS wiring, failed-attempt
limits, client profiles, and what importing the SDK pulls in."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.requests import HTTPConnection

from reward_kit._errors import ConfigurationError, MissingDependency
from reward_kit.cli import cli
from reward_kit.sdk.auth import ApiKey, Combined, MutualTLS, from_env, from_profile
from reward_kit.service import ServeSettings, create_app
from reward_kit.service.auth import (
    ApiKeyAuthenticator,
    FailureLimiter,
    build_authenticators,
    uvicorn_tls_options,
)
from reward_kit.service.auth._pki import CertificateSet
from tests.conftest import HOSTILE

from .conftest import AUDIENCE, LeakGuard, base_settings, private_keys

KEY = "rk_setup-key-0123456789abcdef"


def test_leak_guard_catches_a_leak(leak_guard: LeakGuard) -> None:
    guard = LeakGuard()
    guard.add("super-secret-value-0123456789")
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "key=%s", ("super-secret-value-0123456789",), None
    )
    guard.emit(record)
    with pytest.raises(AssertionError, match="secrets in logs"):
        guard.check()


def test_failed_attempts_are_limited_per_address(live_server: Any, leak_guard: LeakGuard) -> None:
    leak_guard.add(KEY)
    settings = base_settings(api_keys=(KEY,), auth_failure_limit=3, auth_failure_window=60)
    app = create_app(settings=settings)
    with live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        wrong = {"authorization": "Bearer rk_not-the-key-0123456789"}
        statuses = [client.get("/functions", headers=wrong).status_code for _ in range(3)]
        assert statuses == [403, 403, 403]
        blocked = client.get("/functions", headers=wrong)
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert "too many failed authentication attempts" in blocked.json()["error"]["message"]
        # The address is refused even with the right key until the window passes...
        right = client.get("/functions", headers={"authorization": f"Bearer {KEY}"})
        assert right.status_code == 429
        # ...but liveness still answers.
        assert client.get("/health").status_code == 200


def test_failure_limiter_window() -> None:
    limiter = FailureLimiter(limit=2, window=10)
    limiter.record("a", now=0)
    assert limiter.retry_after("a", now=1) is None
    limiter.record("a", now=2)
    assert limiter.retry_after("a", now=3) == 7
    assert limiter.retry_after("b", now=3) is None
    assert limiter.retry_after("a", now=10.5) is None  # the first failure left the window
    assert FailureLimiter(limit=0, window=10).retry_after("a") is None


def test_refusals_of_several_modes_are_all_explained(leak_guard: LeakGuard) -> None:
    settings = base_settings(
        auth=("api-key", "google-iam"), api_keys=(KEY,), google_audiences=(AUDIENCE,)
    )
    middleware_app = create_app(settings=settings)
    scope = {
        "type": "http", "method": "GET", "path": "/functions", "headers": [
            (b"authorization", b"Bearer rk_not-the-key-0123456789")
        ], "client": ("127.0.0.1", 1), "query_string": b"", "server": ("t", 80), "scheme": "http",
    }  # fmt: skip
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(middleware_app.build_middleware_stack()(scope, receive, send))
    body = sent[-1]["body"].decode()
    assert sent[0]["status"] == 401
    assert "api-key: the key presented is not accepted" in body
    assert "google-iam: the bearer token is not a JWT" in body


def test_rk_keys_generate() -> None:
    result = CliRunner().invoke(cli, ["keys", "generate", "--id", "trainer-a"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("#")]
    key, entry = lines
    assert entry.startswith("trainer-a sha256:")
    assert key not in entry
    authenticator = ApiKeyAuthenticator.from_entries([entry])
    scope = {"type": "http", "headers": [(b"authorization", f"Bearer {key}".encode())]}
    identity = asyncio.run(authenticator.authenticate(HTTPConnection(scope)))
    assert identity is not None
    assert identity.subject == "trainer-a"
    other = CliRunner().invoke(cli, ["keys", "generate"])
    assert other.output.split("\n")[1] != key  # random every time
    assert CliRunner().invoke(cli, ["keys", "generate", "--id", "a b"]).exit_code != 0


def test_settings_from_environment(certs: CertificateSet) -> None:
    environ = {
        "RK_AUTH": "mtls,api-key",
        "RK_API_KEYS": KEY,
        "RK_SSL_CERTFILE": str(certs.server_cert),
        "RK_SSL_KEYFILE": str(certs.server_key),
        "RK_SSL_CA_CERTS": str(certs.ca_cert),
        "RK_MTLS_ALLOWED_SUBJECTS": "CN=trainer-1,O=rl-lab; CN=trainer-2,O=rl-lab",
        "RK_GOOGLE_AUDIENCES": "https://a.run.app,https://b.run.app",
    }
    settings = ServeSettings.resolve({"auth": ("api-key",)}, environ)
    assert settings.auth_modes == ("api-key",)  # the flag wins
    settings = ServeSettings.resolve({}, environ)
    assert settings.auth_modes == ("mtls", "api-key")
    assert settings.mtls_allowed_subjects == ("CN=trainer-1,O=rl-lab", "CN=trainer-2,O=rl-lab")
    assert settings.google_audiences == ("https://a.run.app", "https://b.run.app")
    assert [a.mode for a in build_authenticators(settings)] == ["mtls", "api-key"]
    assert ServeSettings(api_keys=(KEY,)).auth_modes == ("api-key",)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"auth": ("kerberos",)}, "unknown auth mode"),
        ({"auth": ("api-key",)}, "api-key auth needs keys"),
        ({"auth": ("google-iam",)}, "audience"),
        ({"auth": ("aws-iam",)}, "allow-list"),
        ({"auth": ("mtls",)}, "--ssl-ca-certs"),
        (
            {"auth": ("mtls",), "ssl_certfile": "server.pem", "ssl_ca_certs": "ca.pem"},
            "missing: --ssl-keyfile",
        ),
        ({"host": "0.0.0.0"}, "refusing to serve on 0.0.0.0 without authentication"),
        ({"ssl_ca_certs": "ca.pem"}, "need ssl_certfile"),
    ],
)
def test_configuration_errors(values: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        build_authenticators(ServeSettings(**values))


def test_rk_serve_passes_tls_options_to_uvicorn(
    certs: CertificateSet, monkeypatch: pytest.MonkeyPatch, leak_guard: LeakGuard
) -> None:
    import uvicorn

    leak_guard.add(*private_keys(certs))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    args = [
        "serve", f"{HOSTILE}:good", "--auth", "mtls", "--ssl-certfile", str(certs.server_cert),
        "--ssl-keyfile", str(certs.server_key), "--ssl-ca-certs", str(certs.ca_cert),
        "--mtls-allow-uri", "spiffe://rl-lab/*", "--workers", "1",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (options,) = calls
    assert options["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert options["ssl_ca_certs"] == str(certs.ca_cert)
    assert options["http"].__name__.startswith("Tls")
    assert "https://127.0.0.1:8000" in result.output
    assert uvicorn_tls_options(ServeSettings()) == {}


def test_profiles_and_environment(tmp_path: Path, certs: CertificateSet) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    cert, cert_key = certs.clients["trainer-1"]
    ini = tmp_path / "auth.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [default]
            type = api-key
            api_key_file = {key_file}

            [secure]
            type = mtls, api-key   ; combined
            cert = {cert}
            key = {cert_key}
            ca = {certs.ca_cert}
            api_key_env = EVALUATOR_KEY

            [broken]
            type = api-key
            colour = blue
            """
        )
    )
    default = from_profile(environ={"RK_AUTH_FILE": str(ini)})
    assert isinstance(default, ApiKey)
    request = httpx.Request("GET", "http://x/")
    next(default.sync_auth_flow(request))
    assert request.headers["authorization"] == f"Bearer {KEY}"
    secure = from_profile("secure", path=ini, environ={"EVALUATOR_KEY": KEY})
    assert isinstance(secure, Combined)
    assert isinstance(secure.client_options()["verify"], ssl.SSLContext)
    assert any(isinstance(c, MutualTLS) for c in secure.credentials)
    with pytest.raises(ConfigurationError, match="unknown keys colour"):
        from_profile("broken", path=ini)
    with pytest.raises(ConfigurationError, match=r"no profile \[nope\]"):
        from_profile("nope", path=ini)
    assert from_env({}) is None
    assert isinstance(from_env({"RK_API_KEY": KEY}), ApiKey)
    with pytest.raises(ConfigurationError, match="same header"):
        from_env({"RK_AUTH_TYPE": "api-key,google-id-token", "RK_API_KEY": KEY})
    assert KEY not in repr(default)
    assert KEY not in repr(secure)


def test_sdk_import_stays_light() -> None:
    code = (
        "import sys, reward_kit.sdk, reward_kit.sdk.auth\n"
        "heavy = {'google', 'botocore', 'boto3', 'cryptography', 'fastapi', 'jwt', 'uvicorn'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from reward_kit.sdk.auth import AwsSigV4, GoogleIdToken

    monkeypatch.setitem(sys.modules, "google.oauth2.id_token", None)
    with pytest.raises(MissingDependency, match=r"reward-kit\[gcp\]"):
        GoogleIdToken()
    monkeypatch.setitem(sys.modules, "botocore.auth", None)
    with pytest.raises(MissingDependency, match=r"reward-kit\[aws\]"):
        AwsSigV4(region="us-east-1")


def test_rk_api_keys_file(live_server: Any, tmp_path: Path, leak_guard: LeakGuard) -> None:
    leak_guard.add(KEY)
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    keys = tmp_path / "keys"
    keys.write_text(f"# Docker secret\ntrainer-f sha256:{digest}\n")
    flags = {"targets": (f"{HOSTILE}:good",), "workers": 1}
    settings = ServeSettings.resolve(flags, {"RK_API_KEYS_FILE": str(keys)})
    assert settings.api_key_file == str(keys)
    assert settings.auth_modes == ("api-key",)
    with (
        live_server(create_app(settings=settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.get("/functions").status_code == 401
        ok = client.get("/functions", headers={"authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200, ok.text
    assert any("auth ok: api-key:trainer-f" in line for line in leak_guard.lines)
    missing = ServeSettings.resolve({}, {"RK_API_KEYS_FILE": str(tmp_path / "nope")})
    with pytest.raises(ConfigurationError, match="nope"):
        build_authenticators(missing)


def test_websockets_need_a_credential_too(leak_guard: LeakGuard) -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from reward_kit.service.auth import AuthMiddleware

    leak_guard.add(KEY)

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello " + str(websocket.scope["state"]["identity"]))
        await websocket.close()

    inner = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app = AuthMiddleware(
        inner, authenticators=[ApiKeyAuthenticator.from_entries([f"ws {KEY}"])], failure_limit=0
    )
    with TestClient(app) as client:
        for headers in ({}, {"authorization": "Bearer rk_wrong-key-0123456789ab"}):
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                client.websocket_connect("/ws", headers=headers) as ws,
            ):
                ws.receive_text()
            assert refused.value.code == 1008
        with client.websocket_connect("/ws", headers={"authorization": f"Bearer {KEY}"}) as ws:
            assert ws.receive_text() == "hello api-key:ws"


def test_the_old_server_key_entry_name_still_works_with_a_warning() -> None:
    import reward_kit.service.auth as server_auth

    with pytest.deprecated_call(match="ApiKey is now ApiKeyEntry"):
        old = server_auth.ApiKey  # type: ignore[attr-defined]
    assert old is server_auth.ApiKeyEntry
