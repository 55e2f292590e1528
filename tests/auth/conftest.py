"""Fixtures for the auth tests: a log leak guard, local certificates, keys and fake servers.

Every test in this folder runs under ``leak_guard``: all log records (root, uvicorn, at DEBUG)
are collected, and the secrets a test registers (API keys, tokens, private keys, AWS secrets)
must not appear in any of them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt
from google.auth import jwt as google_jwt
from jwt.algorithms import RSAAlgorithm
from moto.server import ThreadedMotoServer

from reward_kit.service import ServeSettings
from reward_kit.service.auth import CertificateSet, init_certificates
from tests.conftest import HOSTILE

ITEM = {
    "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    "ground_truth": "4",
}


class LeakGuard(logging.Handler):
    """Collects every formatted log record; ``check()`` fails if a registered secret leaks."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.secrets: set[str] = set()
        self._lock2 = threading.Lock()

    def add(self, *values: str | bytes) -> None:
        for value in values:
            text = value.decode() if isinstance(value, bytes) else value
            self.secrets.add(text)
            # A PEM key body also leaks line by line; each base64 line counts.
            self.secrets.update(
                line for line in text.splitlines() if len(line) >= 40 and "-----" not in line
            )

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + repr(record.exc_info[1])
        with self._lock2:
            self.lines.append(f"{record.name}: {text}")

    def check(self) -> None:
        with self._lock2:
            lines = list(self.lines)
        leaks = [(s[:12] + "...", line[:200]) for line in lines for s in self.secrets if s in line]
        assert not leaks, f"secrets in logs: {leaks[:5]}"


@pytest.fixture(autouse=True)
def leak_guard() -> Iterator[LeakGuard]:
    guard = LeakGuard()
    # uvicorn's loggers do not propagate to the root, so attach to them too.
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(guard)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        yield guard
        guard.check()
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(guard)
            lg.setLevel(level)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return init_certificates(
        tmp_path_factory.mktemp("pki"), clients=["trainer-1", "intruder"], organization="rl-lab"
    )


@pytest.fixture(scope="session")
def rogue_certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    # Same names, another CA: must fail the handshake.
    return init_certificates(
        tmp_path_factory.mktemp("rogue"), clients=["trainer-1"], organization="rl-lab"
    )


def private_keys(certificate_set: CertificateSet) -> list[str]:
    paths = [certificate_set.ca_key, certificate_set.server_key]
    paths += [key for _, key in certificate_set.clients.values()]
    return [Path(p).read_text() for p in paths]


def base_settings(**values: Any) -> ServeSettings:
    values.setdefault("auth_failure_limit", 0)
    return ServeSettings(targets=(f"{HOSTILE}:good",), workers=1, **values)


class JsonServer:
    """A tiny threaded HTTP server on 127.0.0.1 answering from a handler function."""

    def __init__(
        self, handle: Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path))
                status, headers, data = handle(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> JsonServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_reply(
    payload: Any, status: int = 200, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json", **headers}, json.dumps(payload).encode()


# --- Google: a local signing key and its certs endpoint (PEM map and JWKS) ---

AUDIENCE = "https://evaluator-test.a.run.app"
EMAIL = "trainer@rl-lab.iam.gserviceaccount.com"
KID = "local-google-key"


@dataclass
class Signer:
    pem: str
    key: rsa.RSAPrivateKey

    def mint(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": AUDIENCE,
            "sub": "1234567890",
            "email": EMAIL,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **overrides,
        }
        signer = crypt.RSASigner.from_string(self.pem, key_id=KID)
        return google_jwt.encode(signer, claims).decode()


def make_signer() -> Signer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return Signer(pem=pem, key=key)


def pem_certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "google-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="session")
def google_key() -> Signer:
    return make_signer()


@pytest.fixture(scope="session")
def other_key() -> Signer:
    return make_signer()


@pytest.fixture
def certs_server(google_key: Signer) -> Iterator[JsonServer]:
    jwk = json.loads(RSAAlgorithm.to_jwk(google_key.key.public_key()))
    jwks = {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}
    pem_map = {KID: pem_certificate(google_key.key)}

    def handle(method: str, path: str, headers: Any, body: bytes) -> Any:
        if path == "/certs":
            return json_reply(pem_map, **{"cache-control": "public, max-age=3600"})
        if path == "/jwks":
            return json_reply(jwks, **{"cache-control": "public, max-age=3600"})
        return json_reply({}, 404)

    with JsonServer(handle) as server:
        yield server


# --- AWS: moto's STS with signature checking on ---

ACCOUNT = "123456789012"
TRAINER_ARN = f"arn:aws:iam::{ACCOUNT}:user/trainer"
SERVER_ID = "evaluator-test"


@dataclass
class AwsUser:
    arn: str
    access_key: str
    secret: str

    def session(self) -> botocore.session.Session:
        session = botocore.session.Session()
        session.set_credentials(self.access_key, self.secret)
        return session


@dataclass
class FakeSts:
    url: str
    trainer: AwsUser
    outsider: AwsUser


# Package scope: moto's auth switch is process-wide, so it is switched back off as soon as
# tests/auth is done, before any other folder's moto tests run.
@pytest.fixture(scope="package")
def sts() -> Iterator[FakeSts]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # Setup only: botocore DEBUG-logs IAM responses, and CreateAccessKey's holds the secret
    # (the leak guard caught it). The product never calls IAM; its own logging stays on.
    botocore_logger = logging.getLogger("botocore")
    level = botocore_logger.level
    botocore_logger.setLevel(logging.INFO)
    try:
        iam = boto3.client(
            "iam", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="setup", aws_secret_access_key="setup",
        )  # fmt: skip
        users = []
        for name in ("trainer", "outsider"):
            arn = iam.create_user(UserName=name)["User"]["Arn"]
            key = iam.create_access_key(UserName=name)["AccessKey"]
            users.append(AwsUser(arn, key["AccessKeyId"], key["SecretAccessKey"]))
        iam.close()
    finally:
        botocore_logger.setLevel(level)
    # From here on moto checks every request's SigV4 signature against these users' secrets,
    # as STS does; a tampered or wrongly signed token is refused by STS, not by our code.
    assert httpx.post(f"{url}/moto-api/reset-auth", content=b"0").status_code == 200
    try:
        yield FakeSts(url, users[0], users[1])
    finally:
        httpx.post(f"{url}/moto-api/reset-auth", content=b"inf")
        server.stop()


# --- Google: a service-account file whose token_uri is a local fake ---


@dataclass
class ServiceAccount:
    """A service-account file (``GOOGLE_APPLICATION_CREDENTIALS``) whose ``token_uri`` is a
    local endpoint minting ID tokens with ``google_key``; ``issued`` lists what it issued."""

    path: Path
    issued: list[str]
    lifetime: int = 3600
    clock: Callable[[], float] = time.time  # what "now" is when a token is minted


@pytest.fixture
def service_account(
    google_key: Signer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    leak_guard: LeakGuard,
) -> Iterator[ServiceAccount]:
    from urllib.parse import parse_qs

    account = make_signer()
    leak_guard.add(account.pem, google_key.pem)
    made = ServiceAccount(tmp_path / "sa.json", [])

    def token_endpoint(method: str, path: str, headers: Any, body: bytes) -> Any:
        form = parse_qs(body.decode())
        assertion = google_jwt.decode(
            form["assertion"][0], certs={"sa": pem_certificate(account.key)}, verify=True,
            audience="https://oauth2.googleapis.com/token",
        )  # fmt: skip
        now = int(made.clock())
        token = google_key.mint(aud=assertion["target_audience"], iat=now, exp=now + made.lifetime)
        made.issued.append(token)
        leak_guard.add(token)
        return json_reply({"id_token": token})

    with JsonServer(token_endpoint) as token_server:
        made.path.write_text(
            json.dumps(
                {
                    "type": "service_account", "project_id": "rl-lab", "private_key_id": "sa",
                    "private_key": account.pem, "client_email": EMAIL, "client_id": "1",
                    "token_uri": f"{token_server.url}/token",
                }
            )
        )  # fmt: skip
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(made.path))
        yield made


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[AwsUser], None]:
    """Point botocore's default credential chain at one user (environment variables only:
    no ~/.aws files, no instance metadata)."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

    def use(user: AwsUser) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", user.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", user.secret)

    return use


# --- Lambda function URL (AuthType AWS_IAM) -------------------------------------------------


class FunctionUrl:
    """Plays AWS in front of a function URL: checks the SigV4 signature with botocore's own
    canonicalisation (AWS knows every secret; here, the test's), then invokes the Mangum
    handler with a payload-v2.0 event carrying the IAM authorizer block, as Lambda does."""

    def __init__(self, handler: Any, users: dict[str, AwsUser]) -> None:
        self.handler, self.users = handler, users

    def _verify(self, request: httpx.Request) -> AwsUser | None:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            return None
        fields = dict(
            part.strip().split("=", 1) for part in authorization.split(" ", 1)[1].split(",")
        )
        access_key, _date, region, service, _ = fields["Credential"].split("/")
        user = self.users.get(access_key)
        if user is None or service != "lambda":
            return None
        names = fields["SignedHeaders"].split(";")
        headers = {n: request.headers[n] for n in names if n in request.headers}
        rebuilt = AWSRequest(
            request.method, str(request.url), data=request.content, headers=headers
        )
        rebuilt.context["timestamp"] = request.headers["x-amz-date"]
        auth = SigV4Auth(Credentials(user.access_key, user.secret), service, region)
        expected = auth.signature(
            auth.string_to_sign(rebuilt, auth.canonical_request(rebuilt)), rebuilt
        )
        return user if expected == fields["Signature"] else None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        user = self._verify(request)
        if user is None:
            return httpx.Response(403, json={"Message": "Forbidden"})  # AWS, not the app
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": request.url.path,
            "rawQueryString": request.url.query.decode(),
            "headers": dict(request.headers.items()),
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "abc",
                "domainName": request.url.host,
                "http": {
                    "method": request.method, "path": request.url.path, "protocol": "HTTP/1.1",
                    "sourceIp": "198.51.100.7", "userAgent": "test",
                },
                "authorizer": {
                    "iam": {
                        "accessKey": user.access_key, "accountId": ACCOUNT,
                        "callerId": "AIDAEXAMPLE", "userArn": user.arn, "userId": "AIDAEXAMPLE",
                    }
                },
                "requestId": "r1", "stage": "$default", "time": "", "timeEpoch": 0,
            },
            "body": base64.b64encode(request.content).decode(),
            "isBase64Encoded": True,
        }  # fmt: skip
        context = type(
            "Context", (), {
                "function_name": "evaluator", "aws_request_id": "r1", "memory_limit_in_mb": 512,
                "invoked_function_arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:evaluator",
                "get_remaining_time_in_millis": lambda self: 30_000,
            },
        )()  # fmt: skip
        result = self.handler(event, context)
        body = result.get("body", "")
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return httpx.Response(result["statusCode"], headers=result.get("headers"), content=data)


@pytest.fixture
def lambda_loop() -> Iterator[None]:
    # Mangum, like the Lambda runtime, keeps one event loop for the process and never closes
    # it; give it one here and close it, or a later asyncio.run() orphans it (ResourceWarning).
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()
