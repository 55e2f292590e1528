"""Every credential pickles (TRL's AsyncGRPOTrainer and verl/Ray ship reward functions to other
processes), and an unpickled one still authenticates against a real server."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from mangum import Mangum

from reward_kit.sdk import EvaluatorClient
from reward_kit.sdk.auth import (
    ApiKey,
    AwsIamToken,
    AwsSigV4,
    Combined,
    GoogleIdToken,
    MutualTLS,
    NoAuth,
)
from reward_kit.sdk.verl import compute_score_fn
from reward_kit.service import create_app
from reward_kit.service.auth import uvicorn_tls_options
from reward_kit.service.auth._pki import CertificateSet

from .conftest import (
    AUDIENCE,
    ITEM,
    SERVER_ID,
    TRAINER_ARN,
    AwsUser,
    FakeSts,
    FunctionUrl,
    JsonServer,
    LeakGuard,
    ServiceAccount,
    base_settings,
    private_keys,
)

pytestmark = pytest.mark.timeout(180)

KEY = "rk_pickled-key-0123456789abcdef"
URL = "https://evaluator.example.com"


def round_trip(credential: Any) -> Any:
    return pickle.loads(pickle.dumps(credential))


@pytest.fixture
def every_credential(
    certs: CertificateSet,
    service_account: ServiceAccount,
    aws_env: Callable[[AwsUser], None],
) -> dict[str, httpx.Auth]:
    aws_env(AwsUser(TRAINER_ARN, "AKIAPICKLE0000000001", "pickle/secret/0123456789abcdef"))
    cert, key = certs.clients["trainer-1"]
    return {
        "api-key": ApiKey(KEY),
        "no-auth": NoAuth(),
        "mtls": MutualTLS(cert, key, certs.ca_cert),
        "google": GoogleIdToken(AUDIENCE),
        "google-serverless": GoogleIdToken(header="X-Serverless-Authorization"),
        "aws-sigv4": AwsSigV4(region="us-east-1"),
        "aws-sigv4-profile": AwsSigV4(region="us-east-1", profile="trainer"),
        "aws-iam-token": AwsIamToken(region="us-east-1", server_id=SERVER_ID),
        "combined": Combined(MutualTLS(cert, key, certs.ca_cert), ApiKey(KEY, header="X-Key")),
    }


def test_every_credential_round_trips(every_credential: dict[str, httpx.Auth]) -> None:
    for name, credential in every_credential.items():
        copy = round_trip(credential)
        assert type(copy) is type(credential), name
        assert repr(copy) == repr(credential), name
    mtls = round_trip(every_credential["mtls"])
    assert mtls.cert == every_credential["mtls"].cert  # type: ignore[attr-defined]
    assert mtls.client_options()["verify"] is not None


def test_cached_tokens_and_locks_do_not_travel(
    service_account: ServiceAccount, leak_guard: LeakGuard
) -> None:
    credential = GoogleIdToken(AUDIENCE)
    token = credential.token(httpx.Request("GET", URL))
    data = pickle.dumps(credential)
    assert token.encode() not in data
    copy = pickle.loads(data)
    copy.token(httpx.Request("GET", URL))
    assert len(service_account.issued) == 2  # fetched again in the "other process"
    credential.token(httpx.Request("GET", URL))
    assert len(service_account.issued) == 2  # the original still has its cached token


@pytest.mark.parametrize(
    "name",
    ["api-key", "no-auth", "mtls", "google", "google-serverless", "aws-sigv4", "aws-sigv4-profile",
     "aws-iam-token", "combined"],
)  # fmt: skip
def test_reward_functions_holding_a_credential_pickle(
    every_credential: dict[str, httpx.Auth], name: str
) -> None:
    from reward_kit.sdk import trl_reward, trl_reward_sync

    credential = every_credential[name]
    for make in (trl_reward, trl_reward_sync, compute_score_fn):
        reward = make(URL, function="f", auth=credential)
        copy = pickle.loads(pickle.dumps(reward))
        if name == "no-auth":
            assert copy.config.auth is None, make
        else:
            assert type(copy.config.auth) is type(credential), (make, name)


def test_a_given_aws_session_explains_why_it_cannot_pickle(sts: FakeSts) -> None:
    for credential in (
        AwsSigV4(region="us-east-1", session=sts.trainer.session()),
        AwsIamToken(region="us-east-1", session=sts.trainer.session()),
    ):
        with pytest.raises(TypeError, match="profile='NAME' or the default credential chain"):
            pickle.dumps(credential)


def test_unpickled_api_key_and_mtls_authenticate(
    live_server: Any, certs: CertificateSet, leak_guard: LeakGuard
) -> None:
    leak_guard.add(KEY, *private_keys(certs))
    settings = base_settings(
        auth=("mtls", "api-key"),
        api_keys=(KEY,),
        ssl_certfile=str(certs.server_cert),
        ssl_keyfile=str(certs.server_key),
        ssl_ca_certs=str(certs.ca_cert),
        mtls_allowed_subjects=("CN=trainer-1,O=rl-lab",),
    )
    cert, key = certs.clients["trainer-1"]
    trust = MutualTLS(cert, key, certs.ca_cert)
    with live_server(create_app(settings=settings), **uvicorn_tls_options(settings)) as server:
        for credential, identity in (
            (round_trip(trust), "mtls:CN=trainer-1,O=rl-lab"),
            (round_trip(Combined(trust, ApiKey("rk_wrong-key-for-this-0123"))), "mtls:CN="),
        ):
            with EvaluatorClient(server.url, auth=credential, max_retries=0) as client:
                assert client.evaluate(ITEM["messages"], "4", function="good").score == 1.0
            assert any(f"auth ok: {identity}" in line for line in leak_guard.lines)


def test_unpickled_google_id_token_authenticates(
    live_server: Any,
    certs_server: JsonServer,
    service_account: ServiceAccount,
    leak_guard: LeakGuard,
) -> None:
    settings = base_settings(
        auth=("google-iam",),
        google_audiences=(AUDIENCE,),
        google_certs_url=f"{certs_server.url}/jwks",
    )
    credential = round_trip(GoogleIdToken(AUDIENCE))
    with (
        live_server(create_app(settings=settings)) as server,
        EvaluatorClient(server.url, auth=credential, max_retries=0) as client,
    ):
        assert client.evaluate(ITEM["messages"], "4", function="good").score == 1.0
    assert len(service_account.issued) == 1


def test_unpickled_aws_iam_token_authenticates(
    live_server: Any, sts: FakeSts, aws_env: Callable[[AwsUser], None], leak_guard: LeakGuard
) -> None:
    leak_guard.add(sts.trainer.secret)
    aws_env(sts.trainer)
    settings = base_settings(
        auth=("aws-iam",),
        aws_allowed_arns=(TRAINER_ARN,),
        aws_sts_endpoint=sts.url,
        aws_server_id=SERVER_ID,
    )
    credential = round_trip(
        AwsIamToken(region="us-east-1", server_id=SERVER_ID, sts_endpoint=sts.url)
    )
    with (
        live_server(create_app(settings=settings)) as server,
        EvaluatorClient(server.url, auth=credential, max_retries=0) as client,
    ):
        assert client.evaluate(ITEM["messages"], "4", function="good").score == 1.0
        leak_guard.add(credential.token(httpx.Request("GET", server.url)))


@pytest.mark.usefixtures("lambda_loop")
def test_unpickled_sigv4_signs_for_the_function_url(
    aws_env: Callable[[AwsUser], None], leak_guard: LeakGuard
) -> None:
    trainer = AwsUser(TRAINER_ARN, "AKIATRAINER000000002", "trainer/secret/abcdefghij0123456789")
    leak_guard.add(trainer.secret)
    aws_env(trainer)
    app = create_app(settings=base_settings(auth=("aws-iam",), aws_allowed_arns=(TRAINER_ARN,)))
    front = FunctionUrl(Mangum(app, lifespan="auto"), {trainer.access_key: trainer})
    credential = round_trip(AwsSigV4(region="us-east-1"))
    with httpx.Client(
        base_url="https://abc.lambda-url.us-east-1.on.aws",
        transport=httpx.MockTransport(front),
        auth=credential,
    ) as client:
        response = client.post("/evaluate/good", json=ITEM)
        assert response.status_code == 200, response.text
        assert response.json()["score"] == 1.0
