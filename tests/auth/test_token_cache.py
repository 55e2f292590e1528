"""Tokens are cached until shortly before they expire, then fetched again (a controllable
clock on the credential stands in for waiting an hour)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from reward_kit.sdk.auth import AwsIamToken, GoogleIdToken
from reward_kit.service import create_app

from .conftest import (
    AUDIENCE,
    ITEM,
    SERVER_ID,
    TRAINER_ARN,
    FakeSts,
    LeakGuard,
    ServiceAccount,
    base_settings,
)

pytestmark = pytest.mark.timeout(120)

REQUEST = httpx.Request("GET", AUDIENCE)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_google_id_token_is_refetched_shortly_before_expiry(
    service_account: ServiceAccount,
) -> None:
    credential = GoogleIdToken(AUDIENCE)
    clock = Clock()
    credential.clock = clock
    service_account.clock = clock  # tokens are minted on the same clock
    start = clock.now
    credential.token(REQUEST)
    expires = start + service_account.lifetime
    clock.now = expires - credential.refresh_margin - 5  # still comfortably valid: cached
    credential.token(REQUEST)
    assert len(service_account.issued) == 1
    clock.now = expires - credential.refresh_margin + 1  # inside the margin: a new one
    credential.token(REQUEST)
    assert len(service_account.issued) == 2
    credential.token(REQUEST)
    assert len(service_account.issued) == 2  # and that one is cached in turn
    # A token already inside the margin when issued (a short-lived one) is never reused.
    service_account.lifetime = 30
    service_account.clock = time.time
    fresh = GoogleIdToken(AUDIENCE)
    fresh.token(REQUEST)
    fresh.token(REQUEST)
    assert len(service_account.issued) == 4


def test_aws_iam_token_is_remade_after_its_lifetime(
    live_server: Any, sts: FakeSts, leak_guard: LeakGuard
) -> None:
    leak_guard.add(sts.trainer.secret)
    credential = AwsIamToken(
        region="us-east-1", server_id=SERVER_ID, session=sts.trainer.session(),
        sts_endpoint=sts.url, lifetime=600,
    )  # fmt: skip
    made: list[str] = []
    make_token = credential.make_token

    def counting() -> str:
        made.append(make_token())
        return made[-1]

    credential.make_token = counting  # type: ignore[method-assign]
    clock = Clock()
    credential.clock = clock
    start = clock.now
    credential.token(REQUEST)
    clock.now = start + 599
    credential.token(REQUEST)
    assert len(made) == 1
    clock.now = start + 600
    credential.token(REQUEST)
    assert len(made) == 2
    leak_guard.add(*made)
    settings = base_settings(
        auth=("aws-iam",), aws_allowed_arns=(TRAINER_ARN,), aws_sts_endpoint=sts.url,
        aws_server_id=SERVER_ID,
    )  # fmt: skip
    with live_server(create_app(settings=settings)) as server:
        response = httpx.post(f"{server.url}/evaluate/good", json=ITEM, auth=credential)
        assert response.status_code == 200, response.text
