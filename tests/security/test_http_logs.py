"""Log forging: whatever a client puts in a request (percent-encoded newlines in the path,
ANSI escapes, Unicode line separators, odd header bytes) stays inside one escaped log field,
in the text log and in the JSON log, with and without credentials."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from .http_helpers import REWARDS, read_until_closed, serving

pytestmark = pytest.mark.slow

KEY = "rk_log-forging-0123456789abcdef"
FORGED = "2026-01-01 00:00:00,000 INFO reward_kit.auth: auth ok: api-key:admin"
# Percent-encoded, as a client can put them in a path: every way to end or rewrite a line.
BREAKS = ["%0a", "%0d", "%0d%0a", "%1b[2K%0d", "%e2%80%a8", "%e2%80%a9", "%c2%85", "%0b", "%0c"]
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")
# Printed by rk-serve itself before logging starts.
HINT = ("reward-kit: ", "  try: curl ", "         -d ")


def attack(url: str) -> None:
    forged = FORGED.replace(" ", "%20")
    with httpx.Client(base_url=url, timeout=10) as client:
        for crlf in BREAKS:
            for path in (f"/evaluate{crlf}{forged}", f"/evaluate/{crlf}{forged}"):
                client.post(path, json={"messages": []})  # refused by auth: logged with the path
                client.post(path, json={"messages": []}, headers={"authorization": f"Bearer {KEY}"})
            client.get(f"/no{crlf}where", headers={"x-request-id": f"a{crlf}b"})


def test_the_text_log_has_one_line_per_record() -> None:
    env = {"RK_API_KEYS": f"admin {KEY}"}
    with serving(REWARDS, "--workers", "1", env=env) as server:
        attack(server.url)
        # A header value with bytes past ASCII (a browser's or a fuzzer's), on a refused request.
        raw = b"GET /functions%0a" + FORGED.encode().replace(b" ", b"%20") + b" HTTP/1.1\r\n"
        raw += b"Host: 127.0.0.1\r\nUser-Agent: x\xc2\x85y\r\nConnection: close\r\n\r\n"
        read_until_closed(server.connect(raw), timeout=5)
    lines = server.output.splitlines(keepends=True)
    assert any("reward_kit.auth: auth failed" in line for line in lines)
    assert any("reward_kit.access: POST /evaluate\\n2026" in line for line in lines)
    for line in lines:
        assert line.endswith("\n")
        assert TEXT_LINE.match(line) or line.startswith(HINT), line
        assert line[:-1].isprintable(), repr(line)  # no CR, ESC, NEL, U+2028...
    assert not any(line.startswith("2026-01-01 00:00:00,000") for line in lines)


def test_the_json_log_has_no_control_characters_even_once_decoded() -> None:
    env = {"RK_API_KEYS": f"admin {KEY}", "RK_LOG_FORMAT": "json"}
    with serving(REWARDS, "--workers", "1", env=env) as server:
        attack(server.url)
    records = []
    for line in server.output.splitlines(keepends=True):
        if line.startswith(HINT):
            continue
        records.append(json.loads(line))
    assert any(r["logger"] == "reward_kit.auth" for r in records)
    for record in records:
        for key, value in record.items():
            if isinstance(value, str) and key != "exception":
                assert value.isprintable(), (key, value)
