"""AWS IAM: presigned STS tokens verified against moto's STS (which checks SigV4 signatures
once its auth is switched on), and SigV4 requests to a Lambda function URL, through Mangum."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
from typing import Any

import botocore.auth
import botocore.session
import httpx
import pytest
from mangum import Mangum

from reward_kit._errors import ConfigurationError
from reward_kit.sdk.auth import ApiKey, AwsIamToken, AwsSigV4, Combined
from reward_kit.service import create_app
from reward_kit.service.auth._aws import AwsIamAuthenticator

from .conftest import (
    ACCOUNT,
    ITEM,
    SERVER_ID,
    TRAINER_ARN,
    AwsUser,
    FakeSts,
    FunctionUrl,
    JsonServer,
    LeakGuard,
    base_settings,
    json_reply,
)

pytestmark = pytest.mark.timeout(120)


def sts_settings(sts_url: str, **values: Any) -> Any:
    values.setdefault("aws_allowed_arns", (TRAINER_ARN,))
    return base_settings(
        auth=("aws-iam",), aws_sts_endpoint=sts_url, aws_server_id=SERVER_ID, **values
    )


def token_for(user: AwsUser, sts_url: str, server_id: str | None = SERVER_ID) -> str:
    return AwsIamToken(
        region="us-east-1", server_id=server_id, session=user.session(), sts_endpoint=sts_url
    ).make_token()


def retouch(token: str, **header_changes: str) -> str:
    prefix, raw = token.split(".", 1)
    document = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    document["headers"].update(header_changes)
    encoded = base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
    return f"{prefix}.{encoded}"


def test_sts_tokens(
    live_server: Any, sts: FakeSts, leak_guard: LeakGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    leak_guard.add(sts.trainer.secret, sts.outsider.secret)
    good = token_for(sts.trainer, sts.url)
    signed = json.loads(base64.urlsafe_b64decode(good.split(".", 1)[1] + "=="))["headers"]
    later = (
        datetime.datetime.strptime(signed["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        + datetime.timedelta(seconds=1)
    ).strftime("%Y%m%dT%H%M%SZ")
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    with monkeypatch.context() as patch:
        patch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: old)
        expired = token_for(sts.trainer, sts.url)
    with JsonServer(lambda *_: json_reply({"not": "sts"})) as impostor:
        tokens = {
            "tampered": retouch(good, **{"X-Amz-Date": later}),
            "expired": expired,
            "not allowed": token_for(sts.outsider, sts.url),
            "not STS": token_for(sts.trainer, impostor.url),
            "other server": token_for(sts.trainer, sts.url, server_id="another-evaluator"),
            "garbage": "rk-aws-v1.!!!",
        }
        leak_guard.add(good, *tokens.values())
        expected = {
            "tampered": (401, "STS refused the token (SignatureDoesNotMatch)"),
            "expired": (401, "expired"),
            "not allowed": (403, "user/outsider is not on this evaluator's allow-list"),
            "not STS": (401, "which is not STS"),
            "other server": (401, "not made for this server"),
            "garbage": (401, "not a readable STS token"),
        }
        app = create_app(settings=sts_settings(sts.url))
        with live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            credential = AwsIamToken(
                region="us-east-1", server_id=SERVER_ID, session=sts.trainer.session(),
                sts_endpoint=sts.url,
            )  # fmt: skip
            for _ in range(2):
                response = client.post("/evaluate/good", json=ITEM, auth=credential)
                assert response.status_code == 200, response.text
            for case, (status, words) in expected.items():
                response = client.post(
                    "/evaluate/good", json=ITEM, headers={"authorization": f"Bearer {tokens[case]}"}
                )
                assert response.status_code == status, (case, response.text)
                assert words in response.json()["error"]["message"], (case, response.text)
                assert tokens[case] not in response.text
            # A client-set identity header is never an identity.
            forged = client.get("/functions", headers={"x-amz-caller-arn": TRAINER_ARN})
            assert forged.status_code == 401
        assert impostor.requests == [], "a token for a non-STS host was sent there"
    assert any(f"auth ok: aws-iam:{TRAINER_ARN}" in line for line in leak_guard.lines)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/",
        "https://sts.amazonaws.com.evil.example.com/",
        "http://sts.amazonaws.com/",
        "https://sts.us-east-1.amazonaws.com/?Action=AssumeRole",
        "https://user:pw@sts.amazonaws.com/",
        "https://sts.amazonaws.com@evil.com/",
        "https://sts.us-east-1.amazonaws.com@evil.example.com/",
        "https://sts.amazonaws.com:8443/",
        "https://sts.amazonaws.com:/",
        # Hosts under amazonaws.com that anyone can occupy: an S3 bucket named "sts", its
        # website endpoint, API Gateway, a load balancer.
        "https://sts.s3.amazonaws.com/",
        "https://sts.s3-website-us-east-1.amazonaws.com/",
        "https://sts.execute-api.amazonaws.com/",
        "https://sts.elb.amazonaws.com/",
        "https://sts.us-east-1.elb.amazonaws.com/",
        "ftp://sts.amazonaws.com/",
    ],
)
def test_only_real_sts_hosts_by_default(url: str) -> None:
    auth = AwsIamAuthenticator(allowed_arns=["*"])
    with pytest.raises(Exception, match="not STS"):
        auth._check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://sts.amazonaws.com/",
        "https://sts.eu-west-1.amazonaws.com",
        "https://sts-fips.us-east-1.amazonaws.com/",
        "https://sts.us-gov-west-1.amazonaws.com/",
        "https://sts.cn-north-1.amazonaws.com.cn/",
        "https://sts.ap-southeast-2.amazonaws.com/",
    ],
)
def test_real_sts_hosts_pass(url: str) -> None:
    AwsIamAuthenticator(allowed_arns=["*"])._check_url(url)


def test_allow_list_is_required() -> None:
    with pytest.raises(ConfigurationError, match="allow-list"):
        AwsIamAuthenticator(allowed_arns=[])


# --- Lambda function URL (AuthType AWS_IAM) -------------------------------------------------


@pytest.mark.usefixtures("lambda_loop")
def test_lambda_function_url_sigv4(leak_guard: LeakGuard) -> None:
    trainer = AwsUser(TRAINER_ARN, "AKIATRAINER000000001", "trainer/secret/0123456789abcdefghij")
    outsider = AwsUser(
        f"arn:aws:iam::{ACCOUNT}:user/outsider",
        "AKIAOUTSIDER00000001",
        "outsider/secret/0123456789ab",
    )
    leak_guard.add(trainer.secret, outsider.secret)
    app = create_app(settings=base_settings(auth=("aws-iam",), aws_allowed_arns=(TRAINER_ARN,)))
    front = FunctionUrl(
        Mangum(app, lifespan="auto"), {u.access_key: u for u in (trainer, outsider)}
    )
    url = "https://abc.lambda-url.us-east-1.on.aws"

    def client(user: AwsUser | None) -> httpx.Client:
        auth = AwsSigV4(region="us-east-1", session=user.session()) if user else None
        return httpx.Client(base_url=url, transport=httpx.MockTransport(front), auth=auth)

    with client(trainer) as signed:
        response = signed.post("/evaluate/good", json=ITEM, params={"timeout": "10"})
        assert response.status_code == 200, response.text
        assert response.json()["score"] == 1.0
        assert signed.get("/functions").status_code == 200
    with client(outsider) as other:
        refused = other.post("/evaluate/good", json=ITEM)
        assert refused.status_code == 403
        assert "user/outsider is not on this evaluator's allow-list" in refused.text
    # The signature covers the exact body bytes: changing them after signing fails at AWS.
    with client(trainer) as signed:
        request = signed.build_request("POST", "/evaluate/good", json=ITEM)
        flow = signed.auth.sync_auth_flow(request)  # type: ignore[union-attr]
        signed_request = next(flow)
        tampered = httpx.Request(
            "POST", signed_request.url, headers=signed_request.headers,
            content=signed_request.content.replace(b'"4"', b'"5"'),
        )  # fmt: skip
        assert front(tampered).status_code == 403
        assert front(signed_request).status_code == 200
    assert any(
        f"auth ok: aws-iam:{TRAINER_ARN} from 198.51.100.7" in line for line in leak_guard.lines
    )


@pytest.mark.usefixtures("lambda_loop")
def test_lambda_without_iam_block_needs_a_credential() -> None:
    app = create_app(settings=base_settings(auth=("aws-iam",), aws_allowed_arns=(TRAINER_ARN,)))
    handler = Mangum(app, lifespan="off")
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": "/functions", "rawQueryString": "",
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "x-amz-caller-arn": TRAINER_ARN},
        "requestContext": {
            "http": {"method": "GET", "path": "/functions", "protocol": "HTTP/1.1",
                     "sourceIp": "198.51.100.7", "userAgent": "t"},
            "requestId": "r", "stage": "$default", "time": "", "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }  # fmt: skip
    context = type("C", (), {"get_remaining_time_in_millis": lambda self: 1000})()
    result = handler(event, context)
    assert result["statusCode"] == 401


def test_async_clients_use_the_same_credentials(
    live_server: Any, sts: FakeSts, leak_guard: LeakGuard
) -> None:
    leak_guard.add(sts.trainer.secret)
    app = create_app(settings=sts_settings(sts.url))
    token = AwsIamToken(
        region="us-east-1", server_id=SERVER_ID, session=sts.trainer.session(), sts_endpoint=sts.url
    )
    both = Combined(token, ApiKey("rk_ignored-by-this-server-0123", header="X-Api-Key"))

    async def call(url: str) -> list[int]:
        statuses = []
        for auth in (token, both):
            async with httpx.AsyncClient(base_url=url, auth=auth, timeout=30) as client:
                response = await client.post("/evaluate/good", json=ITEM)
                statuses.append(response.status_code)
        return statuses

    with live_server(app) as server:
        assert asyncio.run(call(server.url)) == [200, 200]
    leak_guard.add(token.token(httpx.Request("GET", server.url)))
