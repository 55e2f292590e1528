"""Google IAM: ID tokens minted with a local RSA key, verified against certs served on
localhost in both Google formats (PEM map and JWKS), and fetched through google-auth."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from google.auth import jwt as google_jwt

from reward_kit._errors import ConfigurationError
from reward_kit.sdk.auth import GoogleIdToken
from reward_kit.service import create_app
from reward_kit.service.auth._google import GoogleIamAuthenticator

from .conftest import (
    AUDIENCE,
    EMAIL,
    ITEM,
    JsonServer,
    LeakGuard,
    Signer,
    base_settings,
    json_reply,
    make_signer,
    pem_certificate,
)

pytestmark = pytest.mark.timeout(120)


def google_settings(certs_url: str, **values: Any) -> Any:
    return base_settings(
        auth=("google-iam",), google_audiences=(AUDIENCE,), google_certs_url=certs_url, **values
    )


@pytest.mark.parametrize("form", ["certs", "jwks"])
def test_token_cases(
    live_server: Any,
    certs_server: JsonServer,
    google_key: Signer,
    other_key: Signer,
    leak_guard: LeakGuard,
    form: str,
) -> None:
    leak_guard.add(google_key.pem, other_key.pem)
    now = int(time.time())
    tokens = {
        "good": google_key.mint(),
        "expired": google_key.mint(iat=now - 7200, exp=now - 3600),
        "wrong audience": google_key.mint(aud="https://someone-else.a.run.app"),
        "wrong issuer": google_key.mint(iss="https://evil.example.com"),
        "wrong key": other_key.mint(),
        "garbage": "not-a-token",
        "garbage jwt": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
    }
    leak_guard.add(*tokens.values())
    app = create_app(settings=google_settings(f"{certs_server.url}/{form}"))
    expected = {
        "expired": "expired",
        "wrong audience": "audience",
        "wrong issuer": "not by Google",
        "wrong key": "signature",
        "garbage": "not a JWT",
        "garbage jwt": "google-iam:",
    }
    with live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        good = client.post(
            "/evaluate/good", json=ITEM, headers={"authorization": f"Bearer {tokens['good']}"}
        )
        assert good.status_code == 200, good.text
        for case, words in expected.items():
            response = client.post(
                "/evaluate/good", json=ITEM, headers={"authorization": f"Bearer {tokens[case]}"}
            )
            assert response.status_code == 401, (case, response.text)
            message = response.json()["error"]["message"]
            assert words in message, (case, message)
            assert tokens[case] not in response.text
            assert response.headers["www-authenticate"].startswith("Bearer")
        # Cloud Run's header: the ID token there, Authorization free for something else.
        serverless = client.get(
            "/functions",
            headers={
                "x-serverless-authorization": f"Bearer {tokens['good']}",
                "authorization": "Bearer something-for-the-app",
            },
        )
        assert serverless.status_code == 200
    # Thirteen verifications, one fetch of the signing keys.
    assert certs_server.requests.count(("GET", f"/{form}")) == 1
    assert any(f"auth ok: google-iam:{EMAIL}" in line for line in leak_guard.lines)


def test_email_allow_list_and_unknown_key_refetch(
    certs_server: JsonServer, google_key: Signer, leak_guard: LeakGuard
) -> None:
    leak_guard.add(google_key.pem)
    auth = GoogleIamAuthenticator(
        audiences=[AUDIENCE],
        certs_url=f"{certs_server.url}/jwks",
        allowed_emails=["*@rl-lab.iam.gserviceaccount.com"],
    )
    claims = auth._verify(google_key.mint())
    assert auth._authorize(claims).subject == EMAIL
    outsider = auth._verify(google_key.mint(email="eve@elsewhere.iam.gserviceaccount.com"))
    with pytest.raises(Exception, match="not on this evaluator's allow-list") as refused:
        auth._authorize(outsider)
    assert type(refused.value).__name__ == "PermissionDenied"
    unverified = auth._verify(google_key.mint(email_verified=False))
    with pytest.raises(Exception, match="no verified email"):
        auth._authorize(unverified)


def test_audience_is_required() -> None:
    with pytest.raises(ConfigurationError, match="audience"):
        GoogleIamAuthenticator(audiences=[])


def test_fetch_id_token_with_service_account_file(
    live_server: Any,
    certs_server: JsonServer,
    google_key: Signer,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    leak_guard: LeakGuard,
) -> None:
    account = make_signer()
    leak_guard.add(account.pem, google_key.pem)
    issued: list[str] = []

    def token_endpoint(method: str, path: str, headers: Any, body: bytes) -> Any:
        form = parse_qs(body.decode())
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        # The assertion is signed with the service account's key; check it like Google does
        # (google-auth addresses it to Google's token endpoint whatever token_uri says).
        assertion = google_jwt.decode(
            form["assertion"][0], certs={"sa": pem_certificate(account.key)}, verify=True,
            audience="https://oauth2.googleapis.com/token",
        )  # fmt: skip
        assert assertion["iss"] == EMAIL
        token = google_key.mint(aud=assertion["target_audience"])
        issued.append(token)
        return json_reply({"id_token": token})

    with JsonServer(token_endpoint) as token_server:
        account_file = tmp_path / "sa.json"
        account_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "rl-lab",
                    "private_key_id": "sa",
                    "private_key": account.pem,
                    "client_email": EMAIL,
                    "client_id": "1",
                    "token_uri": f"{token_server.url}/token",
                }
            )
        )
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account_file))
        app = create_app(settings=google_settings(f"{certs_server.url}/certs"))
        credential = GoogleIdToken(AUDIENCE)
        with (
            live_server(app) as server,
            httpx.Client(base_url=server.url, auth=credential, timeout=30) as client,
        ):
            for _ in range(3):
                response = client.post("/evaluate/good", json=ITEM)
                assert response.status_code == 200, response.text
            wrong = GoogleIdToken("https://other-service.a.run.app")
            refused = client.get("/functions", auth=wrong)
            assert refused.status_code == 401
            assert "audience" in refused.json()["error"]["message"]
        leak_guard.add(*issued)
    # Cached: one token for the right audience (three requests), one for the wrong one.
    assert len(issued) == 2
    assert "token" not in repr(credential).lower().replace("idtoken", "")


def test_authentication_401_versus_authorisation_403(
    live_server: Any, certs_server: JsonServer, google_key: Signer, leak_guard: LeakGuard
) -> None:
    """A token that does not verify is 401 (who are you?); a verified Google identity that the
    email allow-list does not admit is 403 (we know who you are: no). docs/auth.md says so."""
    leak_guard.add(google_key.pem)
    settings = google_settings(
        f"{certs_server.url}/jwks", google_allowed_emails=("*@rl-lab.iam.gserviceaccount.com",)
    )
    tokens = {
        "allowed": (google_key.mint(), 200),
        "outsider": (google_key.mint(email="eve@elsewhere.iam.gserviceaccount.com"), 403),
        "unverified email": (google_key.mint(email_verified=False), 403),
        "expired": (google_key.mint(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600), 401),
        "wrong audience": (google_key.mint(aud="https://other.a.run.app"), 401),
    }
    leak_guard.add(*(token for token, _ in tokens.values()))
    with live_server(create_app(settings=settings)) as server:
        for case, (token, status) in tokens.items():
            response = httpx.get(
                f"{server.url}/functions", headers={"authorization": f"Bearer {token}"}
            )
            assert response.status_code == status, (case, response.text)
            if status == 403:
                assert response.json()["error"]["code"] == "forbidden"
                assert "www-authenticate" not in response.headers
            elif status == 401:
                assert response.json()["error"]["code"] == "unauthenticated"
