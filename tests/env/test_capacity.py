"""Session capacity: a Retry-After worth waiting for, /health, and the open-file budget."""

from __future__ import annotations

import math
import time

import httpx
import pytest

import reward_kit.service._connections as connections
from reward_kit.env._capacity import MAX_RETRY_AFTER, LifetimeEstimate
from reward_kit.service import ServeSettings, create_app
from reward_kit.service._connections import ConnectionLimits, fit_connections
from tests.conftest import ROOT, LiveServer, error_of

from ._http import open_session
from .conftest import client, serve

QUICKSTART = str(ROOT / "examples" / "quickstart" / "rewards.py")


def test_retry_after_at_capacity_follows_how_long_sessions_live() -> None:
    # The default idle TTL (300 s): the soonest expiry would be a Retry-After nobody honours.
    with serve(env_max_sessions=1) as live, client(live) as http:
        assert http.get("/health").json()["sessions"] == {"open": 0, "max": 1}
        before_open = time.monotonic()
        first = open_session(http)["session_id"]
        opened = time.monotonic()
        assert http.get("/health").json()["sessions"] == {"open": 1, "max": 1}
        refused = http.post("/envs/guess_number/sessions", json={})
        error_of(refused, 429, "overloaded")
        # No session has ended yet: the open one's age (under a second) is the estimate.
        assert refused.headers["retry-after"] == "1"
        time.sleep(2.2)
        before_delete = time.monotonic()
        assert http.delete(f"/envs/guess_number/sessions/{first}").status_code == 204
        deleted = time.monotonic()
        open_session(http)
        refused = http.post("/envs/guess_number/sessions", json={})
        error_of(refused, 429, "overloaded")
        # One session lived ~2.2 s and one is open: a slot frees in about that long (rounded
        # up), whatever the load did to the clocks in between.
        lived = range(math.ceil(before_delete - opened), math.ceil(deleted - before_open) + 1)
        assert int(refused.headers["retry-after"]) in lived
        assert http.get("/health").json()["sessions"] == {"open": 1, "max": 1}


def test_the_retry_after_estimate() -> None:
    estimate = LifetimeEstimate()
    assert estimate.retry_after([], soonest_expiry=300.0) == 1.0
    assert estimate.retry_after([0.2, 0.4], soonest_expiry=300.0) == 1.0  # ages, clamped up
    # Mean age 120 s over 2 sessions: 60 s, clamped to what clients still honour.
    assert estimate.retry_after([100.0, 140.0], soonest_expiry=300.0) == MAX_RETRY_AFTER
    for lifetime in (100.0, 20.0):
        estimate.ended(lifetime)
    assert estimate.mean == pytest.approx(100.0 + 0.2 * (20.0 - 100.0))  # 84
    assert estimate.retry_after([1.0] * 8, soonest_expiry=300.0) == 11.0  # ceil(84 / 8)
    assert estimate.retry_after([1.0] * 8, soonest_expiry=4.2) == 5.0  # the reaper is sooner
    assert estimate.retry_after([1.0], soonest_expiry=300.0) == MAX_RETRY_AFTER


def test_health_has_no_sessions_without_environments() -> None:
    settings = ServeSettings(targets=(QUICKSTART,), workers=0)
    with LiveServer(create_app(settings=settings)) as live:
        assert "sessions" not in httpx.get(f"{live.url}/health").json()


def test_the_open_file_budget_counts_two_descriptors_a_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: object) -> None:
        raise ValueError("the hard limit")

    monkeypatch.setattr(connections.resource, "getrlimit", lambda _: (1024, 1024))
    monkeypatch.setattr(connections.resource, "setrlimit", refuse)
    limits = ConnectionLimits(header_timeout=5, body_timeout=5, max_connections=2048)
    # 1024 - (64 + 8 x 2 workers) = 944 without environments...
    assert fit_connections(limits, workers=2).max_connections == 944
    # ... and 256 sessions take 2 x 256 + 4 (the fork server) more.
    assert fit_connections(limits, workers=2, sessions=256).max_connections == 944 - 516
    small = ConnectionLimits(header_timeout=5, body_timeout=5, max_connections=400)
    assert fit_connections(small, workers=2, sessions=256).max_connections == 400
