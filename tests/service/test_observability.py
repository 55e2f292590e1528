"""Prometheus metrics, request ids, and JSON logs that carry the request id and identity."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reward_kit.service import ServeSettings, create_app
from reward_kit.service._observability import JsonFormatter, TextFormatter, _ContextFilter

from ..conftest import HOSTILE, metric

KEY = "obs-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"messages": [{"role": "assistant", "content": "4"}], "ground_truth": "4"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = ServeSettings(targets=(HOSTILE,), workers=1, api_keys=(f"metrics-test {KEY}",))
    with TestClient(create_app(settings=settings)) as client:
        yield client


def test_metrics_are_behind_auth(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=AUTH).status_code == 200


def test_metrics_count_requests_items_and_latency(client: TestClient) -> None:
    before = client.get("/metrics", headers=AUTH).text
    client.post("/evaluate/good", json=BODY, headers=AUTH)
    items = [{**BODY, "behaviour": b} for b in ("good", "raise", "good")]
    client.post("/batch_evaluate/routed", json={"items": items}, headers=AUTH)
    client.post("/evaluate/good", json=BODY)  # refused: counted with its status
    text = client.get("/metrics", headers=AUTH).text
    assert (
        metric(text, "rk_items_total", function="routed", status="ok")
        - metric(before, "rk_items_total", function="routed", status="ok")
        == 2
    )
    assert metric(text, "rk_items_total", function="routed", status="error") >= 1
    assert metric(text, "rk_requests_total", route="/evaluate/{name}", status="401") >= 1
    assert metric(text, "rk_request_duration_seconds_count", route="/batch_evaluate/{name}") >= 1
    assert metric(text, "rk_item_duration_seconds_count", function="good") >= 1
    assert metric(text, "rk_pool_workers") == 1
    assert "rk_pool_queue_depth" in text
    assert "rk_in_flight_requests" in text


def test_metric_labels_cannot_be_chosen_by_clients(client: TestClient) -> None:
    for index in range(5):
        client.post(f"/evaluate/no-such-function-{index}", json=BODY, headers=AUTH)
        client.request(f"BREW{index}", "/evaluate", headers=AUTH)
    text = client.get("/metrics", headers=AUTH).text
    assert "no-such-function" not in text
    assert "BREW" not in text
    assert metric(text, "rk_requests_total", method="other", route="/evaluate") >= 5
    assert (
        metric(text, "rk_request_duration_seconds_count", route="/evaluate/{name}", function="")
        >= 5
    )


def test_request_id_is_kept_or_made(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "trainer-step-42"})
    assert given.headers["x-request-id"] == "trainer-step-42"
    made = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


def test_responses_say_their_server_time(client: TestClient) -> None:
    response = client.post("/evaluate/sleeper?timeout=0.2", json=BODY, headers=AUTH)
    assert response.status_code == 504
    name, _, duration = response.headers["server-timing"].partition(";dur=")
    assert name == "app"
    assert 200 <= float(duration) < 10_000
    refused = client.post("/evaluate/good", json=BODY)
    assert refused.status_code == 401
    assert refused.headers["server-timing"].startswith("app;dur=")


def test_json_logs_carry_request_id_and_identity_never_the_key(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_ContextFilter())
    access = logging.getLogger("reward_kit.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        client.post("/evaluate/good", json=BODY, headers={**AUTH, "X-Request-ID": "req-7"})
    finally:
        access.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    line = next(entry for entry in lines if entry.get("request_id") == "req-7")
    assert line["identity"] == "api-key:metrics-test"
    assert line["status"] == 200
    assert line["route"] == "/evaluate/{name}"
    assert KEY not in stream.getvalue()


def test_metrics_can_be_turned_off() -> None:
    settings = ServeSettings(targets=(HOSTILE,), workers=1, metrics=False)
    with TestClient(create_app(settings=settings), base_url="http://localhost") as client:
        assert client.get("/metrics").status_code == 404


def test_metrics_exposition_parses_and_buckets_are_le() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from reward_kit.engine import Outcome
    from reward_kit.service._metrics import Metrics

    metrics = Metrics()
    for seconds in (0.005, 0.0051, 100.0):  # on a bound, just above it, above every bound
        metrics.count_request("POST", "/evaluate/{name}", 200, "good", seconds)
    metrics.observe_outcomes("good", [Outcome("ok", {}, None, 0.5), Outcome("error", None, {}, 1)])
    metrics.track_pool(2, lambda: 5)
    metrics.track_admission(lambda: 1, lambda: 7)
    metrics.queue_wait.observe(0.3)
    metrics.count_admission_refused("queue_full")
    families = {f.name: f for f in text_string_to_metric_families(metrics.render()[0].decode())}
    buckets = {
        s.labels["le"]: s.value
        for s in families["rk_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert (buckets["0.0025"], buckets["0.005"], buckets["0.01"], buckets["30.0"]) == (0, 1, 2, 2)
    assert buckets["+Inf"] == 3
    items = {s.labels["status"]: s.value for s in families["rk_items"].samples}
    assert items == {"ok": 1, "error": 1}
    gauges = {name: families[name].samples[0].value for name in families if "pool" in name}
    assert gauges == {"rk_pool_workers": 2, "rk_pool_busy_tasks": 5, "rk_pool_queue_depth": 3}
    assert families["rk_in_flight_requests"].samples[0].value == 1
    assert families["rk_queued_requests"].samples[0].value == 7
    waits = {
        s.labels["le"]: s.value
        for s in families["rk_queue_wait_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert (waits["0.25"], waits["0.5"], waits["+Inf"]) == (0, 1, 1)
    refused = families["rk_admission_refused"].samples[0]
    assert (refused.labels, refused.value) == ({"reason": "queue_full"}, 1)


def forged_record() -> logging.LogRecord:
    try:
        raise ValueError("bad\n2026-01-01 00:00:00,000 INFO reward_kit.auth: auth ok")
    except ValueError:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "reward_kit\x1b[2Kfake", logging.WARNING, __file__, 1,
        "failed on %s", ("/evaluate\r\n2026-01-01 INFO x\u2028y\x85",), exc_info,
    )  # fmt: skip


def test_text_records_stay_on_their_line_and_tracebacks_are_indented() -> None:
    first, *rest = TextFormatter().format(forged_record()).split("\n")
    assert first.endswith(
        "WARNING reward_kit\\x1b[2Kfake: failed on /evaluate\\r\\n2026-01-01 INFO x\\u2028y\\x85"
    )
    assert rest[0] == "    Traceback (most recent call last):"
    assert all(line.startswith("    ") and line.isprintable() for line in rest)
    # The exception's own line break stays, but the forged line it starts is indented.
    assert rest[-2:] == [
        "    ValueError: bad",
        "    2026-01-01 00:00:00,000 INFO reward_kit.auth: auth ok",
    ]


def test_json_records_escape_every_string_field() -> None:
    record = forged_record()
    record.route = "/x\ny"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed on /evaluate\\r\\n2026-01-01 INFO x\\u2028y\\x85"
    assert entry["logger"] == "reward_kit\\x1b[2Kfake"
    assert entry["route"] == "/x\\ny"
    assert entry["exception"].splitlines()[-2] == "ValueError: bad"  # kept: one JSON field
