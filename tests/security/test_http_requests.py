"""Requests a web page, a proxy-header spoofer or a careless client can send to a real
rk-serve: cross-site bodies (415), DNS-rebinding Hosts (421), X-Forwarded-For, reserved
keyword arguments, non-finite scores, and HTTP errors that must all be JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from ..conftest import error_of
from .http_helpers import (
    HTTP_REWARDS,
    ITEM,
    MESSAGES,
    REWARDS,
    Server,
    read_until_closed,
    request,
    serving,
)

pytestmark = pytest.mark.slow

KEY = "rk_http-security-0123456789abcdef"


@pytest.fixture(scope="module")
def open_server() -> Iterator[Server]:
    """No auth, on loopback: the developer's default server."""
    with serving(REWARDS, HTTP_REWARDS, "--workers", "1") as server:
        yield server


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",  # what a cross-site fetch() or <form enctype="text/plain"> sends
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json; charset=utf-16",
        "application/jsonp",
        "text/json",
    ],
)
def test_bodies_a_web_page_can_send_are_refused(open_server: Server, content_type: str) -> None:
    url = open_server.url
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps(ITEM).encode()
    for path in ("/evaluate/echo", "/batch_evaluate/echo", "/reward", "/openrlhf/echo"):
        response = httpx.post(url + path, content=body, headers=headers)
        error_of(response, 415, "unsupported_media_type")
        assert response.headers["connection"] == "close"
    ok = httpx.post(
        f"{url}/evaluate/echo", content=body, headers={"content-type": "application/json"}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8000", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:8000", "127.1.2.3:9",
     "[::1]", "[::1]:8000", "trainer.localhost:8000", "localhost."],
)  # fmt: skip
def test_loopback_hosts_are_answered_without_auth(open_server: Server, host: str) -> None:
    url = open_server.url
    response = httpx.post(f"{url}/evaluate/echo", json=ITEM, headers={"host": host})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("host", "status"),
    [("evil.example", 421), ("evil.example:8000", 421), ("127.0.0.1.nip.io", 421),
     ("localhost.evil.example", 421), ("0.0.0.0:8000", 421), ("10.0.0.1", 421),
     ("192.168.1.20:8000", 421), ("[::ffff:7f00:1]", 421), ("localhost:abc", 400),
     ("", 400), ("evil.example@localhost", 400)],
)  # fmt: skip
def test_other_hosts_are_refused_without_auth(open_server: Server, host: str, status: int) -> None:
    url = open_server.url
    for method, path in (("POST", "/evaluate/echo"), ("GET", "/functions"), ("GET", "/metrics")):
        response = httpx.request(method, url + path, json=ITEM, headers={"host": host})
        message = error_of(response, status, "invalid_host")
        assert repr(host) in message or status == 400
    # Liveness stays open to probes, which address a server by IP or container name.
    assert httpx.get(f"{url}/health", headers={"host": host}).status_code == 200


def test_two_host_headers_are_refused(open_server: Server) -> None:
    server = open_server
    raw = b"GET /functions HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n"
    raw += b"Connection: close\r\n\r\n"
    answer = read_until_closed(server.connect(raw), timeout=2)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b'"invalid_host"' in answer


def test_the_operator_can_list_more_hosts_and_auth_lifts_the_default() -> None:
    args = (REWARDS, "--workers", "1", "--allowed-hosts", "rk.internal,*.corp.example")
    with serving(*args) as server:
        cases = [("rk.internal:8000", 200), ("a.b.corp.example", 200), ("corp.example", 421),
                 ("localhost", 200), ("evil.example", 421)]  # fmt: skip
        for host, status in cases:
            response = httpx.post(f"{server.url}/evaluate/echo", json=ITEM, headers={"host": host})
            assert response.status_code == status, (host, response.text)
    env = {"RK_API_KEYS": f"trainer {KEY}"}
    auth = {"authorization": f"Bearer {KEY}"}
    with serving(REWARDS, "--workers", "1", env=env) as server:
        # A browser cannot send the credential: any Host is fine with auth...
        response = httpx.post(
            f"{server.url}/evaluate/echo", json=ITEM, headers={**auth, "host": "rk.example.org"}
        )
        assert response.status_code == 200
    with serving(REWARDS, "--workers", "1", "--allowed-hosts", "rk.example.org", env=env) as server:
        # ... unless the operator restricts it.
        response = httpx.post(
            f"{server.url}/evaluate/echo", json=ITEM, headers={**auth, "host": "evil.example"}
        )
        error_of(response, 421, "invalid_host")


def test_forwarded_headers_are_believed_only_from_configured_proxies() -> None:
    env = {"RK_API_KEYS": f"trainer {KEY}"}
    args = (REWARDS, "--workers", "1", "--auth-failure-limit", "2", "--log-level", "info")

    def guesses(url: str) -> list[int]:
        bad = {"authorization": "Bearer rk_wrong-0123456789abcdef0123"}
        return [
            httpx.get(
                f"{url}/functions", headers={**bad, "x-forwarded-for": f"203.0.113.{n}"}
            ).status_code
            for n in range(4)
        ]

    with serving(*args, env=env) as server:
        # Each guess claims another address; the limiter counts the real one and stops it.
        assert guesses(server.url) == [403, 403, 429, 429]
        assert "auth failed from 127.0.0.1" in server.output
    assert "203.0.113." not in server.output
    with serving(*args, "--forwarded-allow-ips", "127.0.0.1", env=env) as server:
        assert guesses(server.url) == [403, 403, 403, 403]  # four different clients
    assert "auth failed from 203.0.113.3" in server.output


@pytest.mark.parametrize(
    ("item", "name"),
    [({"kwargs": {"messages": []}}, "messages"),
     ({"ground_truth": 1, "kwargs": {"ground_truth": 2}}, "ground_truth"),
     ({"kwargs": {"messages": [], "x": 1}}, "messages")],
)  # fmt: skip
def test_reserved_keyword_arguments_are_the_requests_error(
    open_server: Server, item: dict[str, object], name: str
) -> None:
    url = open_server.url
    body = {"messages": MESSAGES, **item}
    message = error_of(httpx.post(f"{url}/evaluate/echo", json=body), 422, "invalid_request")
    assert message.startswith(f"kwargs: {name!r} cannot be a keyword argument")
    results = httpx.post(f"{url}/batch_evaluate/echo", json={"items": [ITEM, body]}).json()
    assert [r["status"] for r in results["results"]] == ["ok", "invalid"]


@pytest.mark.parametrize(
    ("function", "needle"),
    [("nan_metric", "metrics.exact.score"), ("inf_metric", "metrics.exact.score"),
     ("nan_score", "score must be a finite number"), ("nan_step", "step_outputs.0.base_reward")],
)  # fmt: skip
def test_a_score_that_is_not_a_number_is_an_error_never_a_valid_null(
    open_server: Server, function: str, needle: str
) -> None:
    url = open_server.url
    message = error_of(httpx.post(f"{url}/evaluate/{function}", json=ITEM), 500, "function_error")
    assert needle in message
    assert "finite" in message
    (result,) = httpx.post(f"{url}/batch_evaluate/{function}", json={"items": [ITEM]}).json()[
        "results"
    ]
    assert (result["status"], result["result"]) == ("error", None)
    assert needle in result["error"]["message"]


def test_every_error_is_json(open_server: Server) -> None:
    server = open_server
    url = server.url
    json_type = {"content-type": "application/json"}
    answers = [
        httpx.get(f"{url}/nowhere"),
        httpx.delete(f"{url}/evaluate"),
        httpx.post(f"{url}/evaluate/echo", content=b"{", headers=json_type),
        httpx.post(f"{url}/evaluate/echo", content=b"{}", headers={"content-type": "text/plain"}),
        httpx.post(f"{url}/evaluate/echo", json=ITEM, headers={"host": "evil.example"}),
    ]
    for response in answers:
        assert response.status_code >= 400
        assert response.headers["content-type"] == "application/json", response
        assert set(response.json()) == {"error"}
    too_large = request("POST", "/evaluate/echo", content_type="application/json",
                        content_length="99999999999")  # fmt: skip
    raw = {
        b"BAD REQUEST LINE\r\n\r\n": (400, "invalid_http"),
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n": (400, "invalid_http"),
        too_large + b"{": (413, "payload_too_large"),
    }
    for data, (status, code) in raw.items():
        answer = read_until_closed(server.connect(data), timeout=5)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer
        assert b"content-type: application/json" in head
        assert json.loads(body)["error"]["code"] == code


def test_head_answers_on_get_routes(open_server: Server) -> None:
    url = open_server.url
    for path in ("/health", "/functions", "/metrics", "/openapi.json"):
        response = httpx.head(url + path)
        assert response.status_code == 200, path
        assert response.content == b""
