"""API keys: Bearer or X-Api-Key, 401 missing, 403 wrong, /health open, keys never logged."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reward_kit import ConfigurationError
from reward_kit.service import ServeSettings, create_app
from reward_kit.service.auth import build_authenticators

from ..conftest import QUICKSTART

KEY = "rk_test_key_0123456789abcdef"
OTHER = "rk_rotated_key_fedcba9876543210"
BODY = {"messages": [{"role": "assistant", "content": "4"}], "ground_truth": "4"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keyfile = tmp_path_factory.mktemp("keys") / "keys"
    digest = hashlib.sha256(OTHER.encode()).hexdigest()
    keyfile.write_text(f"# rotation: both valid\ntrainer-a {KEY}\ntrainer-b sha256:{digest}\n")
    settings = ServeSettings(targets=(QUICKSTART,), api_key_file=str(keyfile), workers=1)
    with TestClient(create_app(settings=settings)) as client:
        yield client


@pytest.mark.parametrize(
    "path", ["/functions", "/evaluate/exact_match", "/batch_evaluate", "/openapi.json", "/docs"]
)
def test_missing_key_is_401(client: TestClient, path: str) -> None:
    method = client.get if path in ("/functions", "/openapi.json", "/docs") else client.post
    response = method(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer wrong-key-000000000"}, {"X-Api-Key": "wrong-key-000000000"}],
)
def test_wrong_key_is_403(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/evaluate/exact_match", json=BODY, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"X-Api-Key": KEY}, {"Authorization": f"bearer {OTHER}"}],
)
def test_right_key_passes(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/evaluate/exact_match", json=BODY, headers=headers)
    assert response.status_code == 200
    assert response.json()["score"] == 1.0


def test_health_is_open(client: TestClient) -> None:
    assert client.get("/health").status_code == 200


def test_keys_never_reach_the_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/evaluate/exact_match", json=BODY, headers={"X-Api-Key": "wrong-secret-123456"})
    client.post("/evaluate/exact_match", json=BODY, headers={"X-Api-Key": KEY})
    assert caplog.records, "the failed attempt should be logged"
    assert "wrong-secret-123456" not in caplog.text
    assert KEY not in caplog.text


def test_non_loopback_without_auth_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match=r"refusing to serve on 0\.0\.0\.0"):
        build_authenticators(ServeSettings(host="0.0.0.0"))
    assert build_authenticators(ServeSettings(host="0.0.0.0", allow_unauthenticated=True)) == []
    assert build_authenticators(ServeSettings(host="::1")) == []


@pytest.mark.parametrize(
    ("entries", "match"),
    [(["short"], "at least 16"), (["id sha256:abc"], "64 hex digits"), (["a b c"], "3 words")],
)
def test_bad_key_entries_are_clear(entries: list[str], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        build_authenticators(ServeSettings(api_keys=tuple(entries)))


def test_unreadable_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the API key file"):
        build_authenticators(ServeSettings(api_key_file=str(tmp_path / "missing")))
