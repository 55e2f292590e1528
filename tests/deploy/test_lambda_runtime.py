"""The real ``awslambdaric`` runtime client runs the bundle against a fake Lambda Runtime API.

The API key comes, as on AWS, from Secrets Manager by ARN at cold start: here moto's server on
127.0.0.1, reached by the bundle's boto3 through ``AWS_ENDPOINT_URL_SECRETS_MANAGER``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reward_kit.deploy import DeploySpec
from reward_kit.deploy.artifacts import build_lambda_zip

from ..conftest import QUICKSTART
from ._lambda_events import ITEM, url_event

KEY = "rk_runtime_test_key_0123456789"


class FakeRuntimeApi:
    """Hands out one invocation, records the response (or error), then holds /next open."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.done = threading.Event()
        self.release = threading.Event()
        self.result: tuple[str, Any] | None = None
        self.served = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            # The runtime client's native HTTP client keeps the connection open (HTTP/1.1).
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self.send_error(404)
                    return
                if api.served:
                    api.release.wait(30)  # the next poll: the runtime waits for more work
                    self.send_error(500)
                    return
                api.served = True
                body = json.dumps(api.event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", "9999999999999")
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:quick",
                )
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.path.rsplit("/", 1)[-1]  # response, error, or init/error
                api.result = (kind, json.loads(data or b"null"))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                api.done.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeRuntimeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def secrets_manager() -> Iterator[tuple[str, str]]:
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        client = boto3.client(
            "secretsmanager", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        arn = client.create_secret(Name="rk/quick/api-keys", SecretString=f"trainer {KEY}\n")["ARN"]
        client.close()
        yield url, arn
    finally:
        server.stop()


@pytest.mark.slow
def test_awslambdaric_runs_the_bundle(tmp_path: Path, secrets_manager: tuple[str, str]) -> None:
    pytest.importorskip("awslambdaric")
    endpoint, arn = secrets_manager
    artifacts = build_lambda_zip(DeploySpec(name="quick", sources=(QUICKSTART,)), tmp_path)
    assert artifacts.lambda_zip is not None
    task_root = tmp_path / "task"
    with zipfile.ZipFile(artifacts.lambda_zip) as archive:
        archive.extractall(task_root)
    event = url_event(
        "POST", "/evaluate/exact_match", body=ITEM, headers={"authorization": f"Bearer {KEY}"}
    )
    with FakeRuntimeApi(event) as api:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # The bundle first, as LAMBDA_TASK_ROOT is on AWS; the venv only adds
            # awslambdaric and boto3, which the Lambda runtime itself provides.
            "PYTHONPATH": str(task_root),
            "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "quick",
            "AWS_REGION": "us-east-1",  # Lambda sets both region variables
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            "RK_API_KEY_SECRET_ARN": arn,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", "rk_lambda.handler"],
            cwd=task_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            finished = api.done.wait(90)
        finally:
            process.kill()
            output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert finished, f"the runtime posted nothing; its output:\n{output}"
    assert api.result is not None
    kind, payload = api.result
    assert kind == "response", f"{kind}: {payload}\n{output}"
    assert payload["statusCode"] == 200, payload
    assert json.loads(payload["body"])["score"] == 1.0
    assert KEY not in output  # the key never reaches the function's log
