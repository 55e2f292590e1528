"""mTLS: real TLS handshakes on loopback through uvicorn with the TLS protocol subclass."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from reward_kit._errors import EvaluatorUnavailable, PermissionDenied
from reward_kit.cli import cli
from reward_kit.sdk import AsyncEvaluatorClient, EvaluatorClient
from reward_kit.sdk.auth import ApiKey as ClientKey
from reward_kit.sdk.auth import Combined, MutualTLS
from reward_kit.service import create_app
from reward_kit.service.auth import uvicorn_tls_options
from reward_kit.service.auth._mtls import certificate_identity
from reward_kit.service.auth._pki import CertificateSet
from reward_kit.service.auth._tls import TlsH11Protocol, tls_protocol_class

from .conftest import ITEM, LeakGuard, base_settings, private_keys

pytestmark = pytest.mark.timeout(120)


def mtls_settings(certs: CertificateSet, **values: Any) -> Any:
    values.setdefault("auth", ("mtls",))
    return base_settings(
        ssl_certfile=str(certs.server_cert),
        ssl_keyfile=str(certs.server_key),
        ssl_ca_certs=str(certs.ca_cert),
        **values,
    )


def client_for(certs: CertificateSet, name: str, trust: CertificateSet) -> httpx.Client:
    cert, key = certs.clients[name]
    credential = MutualTLS(cert=cert, key=key, ca=trust.ca_cert)
    return httpx.Client(auth=credential, timeout=30, **credential.client_options())


@pytest.mark.parametrize("protocol", ["h11", "httptools"])
def test_handshakes(
    live_server: Any,
    certs: CertificateSet,
    rogue_certs: CertificateSet,
    leak_guard: LeakGuard,
    protocol: str,
) -> None:
    leak_guard.add(*private_keys(certs), *private_keys(rogue_certs))
    settings = mtls_settings(certs, mtls_allowed_uris=("spiffe://rl-lab/trainer-*",))
    options = uvicorn_tls_options(settings)
    assert options["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    if protocol == "h11":
        options["http"] = TlsH11Protocol
    with live_server(create_app(settings=settings), **options) as server:
        url = server.url + "/evaluate/good"
        assert server.url.startswith("https://")

        # A good certificate: the app sees its subject and SAN URI, the request succeeds.
        with client_for(certs, "trainer-1", certs) as good:
            response = good.post(url, json=ITEM)
            assert response.status_code == 200, response.text
            assert response.json()["score"] == 1.0

        # No client certificate: the TLS 1.3 server drops the connection after the handshake.
        anonymous = ssl.create_default_context(cafile=str(certs.ca_cert))
        with (
            httpx.Client(verify=anonymous, timeout=30) as client,
            pytest.raises((httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError)),
        ):
            client.post(url, json=ITEM)

        # Same subject, signed by another CA: refused in the handshake.
        with (
            client_for(rogue_certs, "trainer-1", certs) as rogue,
            pytest.raises((httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError)),
        ):
            rogue.post(url, json=ITEM)

        # Signed by our CA but outside the allow-list: the app refuses with 403 and says why.
        with client_for(certs, "intruder", certs) as intruder:
            response = intruder.post(url, json=ITEM)
            assert response.status_code == 403
            assert "CN=intruder,O=rl-lab" in response.json()["error"]["message"]
            assert intruder.get(server.url + "/health").status_code == 200
    assert any("auth ok: mtls:CN=trainer-1,O=rl-lab" in line for line in leak_guard.lines)


def test_mtls_with_api_key_makes_certificates_optional(
    live_server: Any, certs: CertificateSet, leak_guard: LeakGuard
) -> None:
    key = "rk_mtls-plus-key-0123456789"
    leak_guard.add(key, *private_keys(certs))
    settings = mtls_settings(certs, auth=("mtls", "api-key"), api_keys=(key,))
    options = uvicorn_tls_options(settings)
    assert options["ssl_cert_reqs"] == ssl.CERT_OPTIONAL
    with live_server(create_app(settings=settings), **options) as server:
        trust_only = ssl.create_default_context(cafile=str(certs.ca_cert))
        with httpx.Client(verify=trust_only, timeout=30) as client:
            assert client.get(server.url + "/functions").status_code == 401
            ok = client.get(server.url + "/functions", headers={"authorization": f"Bearer {key}"})
            assert ok.status_code == 200
        cert, cert_key = certs.clients["trainer-1"]
        both = Combined(MutualTLS(cert=cert, key=cert_key, ca=certs.ca_cert), ClientKey(key))
        with httpx.Client(auth=both, timeout=30, **both.client_options()) as client:
            assert client.get(server.url + "/functions").status_code == 200


def test_protocol_class_is_httptools_variant_when_available() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(tls_protocol_class(), HttpToolsProtocol)


def test_certs_init_cli(tmp_path: Path, leak_guard: LeakGuard) -> None:
    result = CliRunner().invoke(cli, ["certs", "init", str(tmp_path), "--client", "trainer-9"])
    assert result.exit_code == 0, result.output
    subject, uris = certificate_identity((tmp_path / "trainer-9.pem").read_text())
    assert subject == "CN=trainer-9,O=reward-kit"
    assert uris == ["spiffe://reward-kit/trainer-9"]
    assert (tmp_path / "trainer-9-key.pem").stat().st_mode & 0o077 == 0
    assert "PRIVATE KEY" not in result.output
    again = CliRunner().invoke(cli, ["certs", "init", str(tmp_path)])
    assert again.exit_code != 0
    assert "refusing to overwrite" in str(again.exception or again.output)


def test_positional_form_from_the_issue(certs: CertificateSet) -> None:
    cert, key = certs.clients["trainer-1"]
    tls = MutualTLS(cert, key, certs.ca_cert)
    assert (tls.cert, tls.key, tls.ca) == (str(cert), str(key), str(certs.ca_cert))
    with pytest.raises(TypeError):
        MutualTLS(cert, key, certs.ca_cert, "password")  # type: ignore[call-arg]


def test_sdk_clients_with_mutual_tls(
    live_server: Any, certs: CertificateSet, leak_guard: LeakGuard
) -> None:
    # Through ClientConfig.httpx_options (the SSL context as verify=), not a hand-made httpx
    # client: the path every user of EvaluatorClient / AsyncEvaluatorClient takes.
    leak_guard.add(*private_keys(certs))
    settings = mtls_settings(certs, mtls_allowed_subjects=("CN=trainer-1,O=rl-lab",))
    cert, key = certs.clients["trainer-1"]
    intruder_cert, intruder_key = certs.clients["intruder"]
    with live_server(create_app(settings=settings), **uvicorn_tls_options(settings)) as server:
        good = MutualTLS(cert, key, certs.ca_cert)
        with EvaluatorClient(server.url, auth=good, max_retries=0) as client:
            assert client.evaluate(ITEM["messages"], "4", function="good").score == 1.0
            results = client.batch_evaluate([ITEM, ITEM], function="good")
            assert [r.score for r in results] == [1.0, 1.0]

        async def run_async(credential: MutualTLS) -> float:
            async with AsyncEvaluatorClient(server.url, auth=credential, max_retries=0) as client:
                return (await client.evaluate(ITEM["messages"], "4", function="good")).score

        assert asyncio.run(run_async(good)) == 1.0
        intruder = MutualTLS(intruder_cert, intruder_key, certs.ca_cert)
        with pytest.raises(PermissionDenied, match="CN=intruder,O=rl-lab"):
            asyncio.run(run_async(intruder))
        # The server's certificate is checked too: without our CA the handshake fails.
        untrusting = MutualTLS(cert, key)
        with (
            EvaluatorClient(server.url, auth=untrusting, max_retries=0) as client,
            pytest.raises(EvaluatorUnavailable),
        ):
            client.functions()
    assert any("auth ok: mtls:CN=trainer-1,O=rl-lab" in line for line in leak_guard.lines)
