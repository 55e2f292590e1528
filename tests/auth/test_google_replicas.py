"""Google ID tokens to several replicas: each replica gets a token for its own origin.

Two real evaluators on loopback, each accepting only its own URL as the token's audience (as
two Cloud Run services do); one client with ``GoogleIdToken()`` shards a batch across both.
Tokens come from google-auth's service-account flow against a local token endpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from google.auth import jwt as google_jwt

from reward_kit.sdk import EvaluatorClient, make_item
from reward_kit.sdk.auth import GoogleIdToken
from reward_kit.service import ServeSettings, create_app

from ..conftest import LiveServer
from .conftest import EMAIL, JsonServer, LeakGuard, Signer, json_reply, make_signer, pem_certificate

pytestmark = pytest.mark.timeout(120)

WHOAMI = str(Path(__file__).parents[1] / "sdk" / "replica_rewards.py") + ":whoami"


def replica(certs_url: str) -> LiveServer:
    """An evaluator that accepts only ID tokens addressed to its own URL."""
    live = LiveServer(None)
    settings = ServeSettings(
        targets=(WHOAMI,),
        workers=0,
        auth=("google-iam",),
        google_audiences=(live.url,),
        google_certs_url=certs_url,
        auth_failure_limit=0,
    )
    live.config.app = create_app(settings=settings)  # its URL was needed to make it
    return live


def test_each_replica_gets_a_token_for_its_own_audience(
    certs_server: JsonServer,
    google_key: Signer,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    leak_guard: LeakGuard,
) -> None:
    account = make_signer()
    leak_guard.add(account.pem, google_key.pem)
    audiences: list[str] = []

    def token_endpoint(method: str, path: str, headers: Any, body: bytes) -> Any:
        form = parse_qs(body.decode())
        assertion = google_jwt.decode(
            form["assertion"][0], certs={"sa": pem_certificate(account.key)}, verify=True,
            audience="https://oauth2.googleapis.com/token",
        )  # fmt: skip
        audiences.append(assertion["target_audience"])
        token = google_key.mint(aud=assertion["target_audience"])
        leak_guard.add(token)
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
        certs = f"{certs_server.url}/certs"
        with replica(certs) as first, replica(certs) as second:
            items = [make_item([{"role": "assistant", "content": "4"}], kwargs={"id": i})
                     for i in range(10)]  # fmt: skip
            with EvaluatorClient([first.url, second.url], auth=GoogleIdToken()) as client:
                for _ in range(2):
                    results = client.batch_evaluate(items, function="whoami")
                    assert [r.score for r in results] == [(i + 1) / 1000 for i in range(10)]
    # One token per replica, each for that replica's origin, cached for the second batch.
    assert sorted(audiences) == sorted([first.url, second.url])
