"""Every endpoint x every mode x {no, wrong, right credential}: nothing but /health answers
without the right one. One real server per mode, configured with that mode only."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from reward_kit.sdk.auth import ApiKey, AwsIamToken, MutualTLS
from reward_kit.service import ServeSettings, create_app
from reward_kit.service.auth import uvicorn_tls_options
from reward_kit.service.auth._pki import CertificateSet

from .conftest import (
    AUDIENCE,
    ITEM,
    SERVER_ID,
    TRAINER_ARN,
    FakeSts,
    JsonServer,
    LeakGuard,
    Signer,
    base_settings,
    private_keys,
)

pytestmark = pytest.mark.timeout(240)

RIGHT_KEY = "rk_right-key-0123456789abcdef"
WRONG_KEY = "rk_wrong-key-0123456789abcdef"
TRANSPORT_REFUSED = (httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError)


def endpoints(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, plus a path it does not."""
    found = [("GET", "/no-such-path"), ("POST", "/no-such-path")]
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            path = route.path.replace("{name}", "good")
            found += [(m, path) for m in sorted(route.methods) if m != "HEAD"]
    return found


def body_for(path: str) -> Any:
    return {"items": [ITEM]} if path.startswith("/batch_evaluate") else ITEM


@contextmanager
def mode_setup(
    mode: str, request: pytest.FixtureRequest, guard: LeakGuard
) -> Iterator[tuple[ServeSettings, dict[str, Any], dict[str, Callable[[str], httpx.Client]]]]:
    """Settings, uvicorn options and a client factory per credential kind for ``mode``."""

    def plain(**options: Any) -> Callable[[str], httpx.Client]:
        return lambda base: httpx.Client(base_url=base, timeout=30, **options)

    if mode == "api-key":
        guard.add(RIGHT_KEY, WRONG_KEY)
        settings = base_settings(auth=("api-key",), api_keys=(f"trainer {RIGHT_KEY}",))
        yield (
            settings,
            {},
            {
                "no": plain(),
                "wrong": plain(auth=ApiKey(WRONG_KEY)),
                "right": plain(auth=ApiKey(RIGHT_KEY)),
            },
        )
    elif mode == "google-iam":
        signer: Signer = request.getfixturevalue("google_key")
        other: Signer = make_other_signer()
        certs_server: JsonServer = request.getfixturevalue("certs_server")
        right, wrong = signer.mint(), other.mint()
        guard.add(signer.pem, other.pem, right, wrong)
        settings = base_settings(
            auth=("google-iam",),
            google_audiences=(AUDIENCE,),
            google_certs_url=f"{certs_server.url}/jwks",
        )
        yield (
            settings,
            {},
            {
                "no": plain(),
                "wrong": plain(headers={"authorization": f"Bearer {wrong}"}),
                "right": plain(headers={"authorization": f"Bearer {right}"}),
            },
        )
    elif mode == "aws-iam":
        sts: FakeSts = request.getfixturevalue("sts")
        guard.add(sts.trainer.secret, sts.outsider.secret)

        def token(user: Any) -> AwsIamToken:
            return AwsIamToken(
                region="us-east-1", server_id=SERVER_ID, session=user.session(),
                sts_endpoint=sts.url,
            )  # fmt: skip

        settings = base_settings(
            auth=("aws-iam",),
            aws_allowed_arns=(TRAINER_ARN,),
            aws_sts_endpoint=sts.url,
            aws_server_id=SERVER_ID,
        )
        right_token, wrong_token = token(sts.trainer).make_token(), token(sts.outsider).make_token()
        guard.add(right_token, wrong_token)
        yield (
            settings,
            {},
            {
                "no": plain(),
                "wrong": plain(headers={"authorization": f"Bearer {wrong_token}"}),
                "right": plain(headers={"authorization": f"Bearer {right_token}"}),
            },
        )
    else:
        certs: CertificateSet = request.getfixturevalue("certs")
        guard.add(*private_keys(certs))
        settings = base_settings(
            auth=("mtls",),
            ssl_certfile=str(certs.server_cert),
            ssl_keyfile=str(certs.server_key),
            ssl_ca_certs=str(certs.ca_cert),
            mtls_allowed_subjects=("CN=trainer-1,O=rl-lab",),
        )

        def tls(name: str | None) -> Callable[[str], httpx.Client]:
            if name is None:
                return plain(verify=ssl.create_default_context(cafile=str(certs.ca_cert)))
            cert, key = certs.clients[name]
            credential = MutualTLS(cert=cert, key=key, ca=certs.ca_cert)
            return plain(auth=credential, **credential.client_options())

        yield (
            settings,
            uvicorn_tls_options(settings),
            {
                "no": tls(None),
                "wrong": tls("intruder"),
                "right": tls("trainer-1"),
            },
        )


def make_other_signer() -> Signer:
    from .conftest import make_signer

    return make_signer()


@pytest.mark.parametrize("mode", ["api-key", "google-iam", "aws-iam", "mtls"])
def test_matrix(
    mode: str, live_server: Any, request: pytest.FixtureRequest, leak_guard: LeakGuard
) -> None:
    with mode_setup(mode, request, leak_guard) as (settings, options, clients):
        app = create_app(settings=settings)
        routes = endpoints(app)
        assert {("POST", "/evaluate/good"), ("POST", "/batch_evaluate"), ("GET", "/functions"),
                ("GET", "/openapi.json"), ("GET", "/health")} <= set(routes)  # fmt: skip
        with live_server(app, **options) as server:
            for kind in ("no", "wrong", "right"):
                with clients[kind](server.url) as client:
                    for method, path in routes:
                        body = body_for(path) if method == "POST" else None
                        try:
                            response = client.request(method, path, json=body)
                        except TRANSPORT_REFUSED:
                            # Only mTLS without a certificate is refused before HTTP at all.
                            assert (mode, kind) == ("mtls", "no"), (method, path)
                            continue
                        label = (mode, kind, method, path, response.status_code)
                        if path == "/health":
                            assert response.status_code == 200, label
                        elif kind != "right":
                            assert response.status_code in (401, 403), label
                            code = response.json()["error"]["code"]
                            assert code in ("unauthenticated", "forbidden"), label
                            assert mode in response.json()["error"]["message"] or kind == "no"
                        elif path.startswith(("/evaluate", "/reward", "/batch_evaluate")):
                            assert response.status_code == 200, (label, response.text)
                        elif path == "/no-such-path":
                            assert response.status_code in (404, 405), label
                        else:
                            assert response.status_code not in (401, 403, 429), label
    refusals = [line for line in leak_guard.lines if "auth failed" in line]
    assert refusals, "auth failures should be logged"
