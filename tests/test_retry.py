"""One retry helper for the SDK, the LLM judge and the deploy code: a tolerant Retry-After
parser, and backoff with Retry-After as a floor."""

from __future__ import annotations

import datetime

import httpx
import pytest

from reward_kit import InvalidResponse
from reward_kit._retry import backoff_delay, parse_retry_after, retry_delay
from reward_kit.sdk import EvaluatorClient

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        ("0", 0.0),
        (b"7", 7.0),
        (" 2.5 ", 2.5),
        ("Thu, 01 Jan 2026 00:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 00:00:30 -0000", 30.0),  # raised TypeError in the old SDK parser
        ("Thu, 01 Jan 2026 01:00:30 +0100", 30.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),  # in the past
        ("soon", None),  # raised ValueError in the old judge parser
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        (None, None),
        ("Thu, 99 Foo 2026", None),
    ],
)
def test_retry_after_is_parsed_tolerantly(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_backoff_grows_and_is_capped() -> None:
    highs = [backoff_delay(n, base=0.5, maximum=30.0, uniform=max) for n in range(10)]
    assert highs[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert highs[6:] == [30.0] * 4
    lows = [backoff_delay(n, base=0.5, maximum=30.0, uniform=min) for n in range(3)]
    assert lows == [0.25, 0.5, 1.0]  # equal jitter: never 0
    assert backoff_delay(10_000, base=0.5, maximum=30.0, uniform=max) == 30.0


def test_retry_after_is_a_floor_under_the_backoff() -> None:
    assert retry_delay(0, base=0.5, maximum=30.0, retry_after=5.0, uniform=min) == 5.0
    assert retry_delay(5, base=0.5, maximum=30.0, retry_after=1.0, uniform=max) == 16.0
    assert retry_delay(1, base=0.5, maximum=30.0, uniform=max) == 1.0


def test_a_retry_after_floor_is_jittered_above_it() -> None:
    # Clients refused together with the same Retry-After must not retry in lockstep: up to
    # half a backoff step above the floor, never below it.
    assert retry_delay(0, base=0.5, maximum=30.0, retry_after=5.0, uniform=max) == 5.25
    assert retry_delay(3, base=0.5, maximum=30.0, retry_after=5.0, uniform=max) == 7.0
    waits = {retry_delay(2, base=0.5, maximum=30.0, retry_after=5.0) for _ in range(50)}
    assert len(waits) > 1
    assert all(5.0 <= wait <= 6.0 for wait in waits)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>bad gateway</html>", "not JSON"),
        (b'{"results": []}', "0 results for 1 items"),
    ],
)
def test_a_malformed_answer_is_an_invalid_response(body: bytes, expected: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    client = EvaluatorClient(
        "http://127.0.0.1:9", transport=httpx.MockTransport(answer), auth=False, max_retries=0
    )
    with client, pytest.raises(InvalidResponse, match=expected) as raised:
        client.batch_evaluate([{"messages": [{"role": "user", "content": "x"}]}], function="f")
    assert raised.value.code == "invalid_response"
