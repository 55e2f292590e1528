"""A small local fake of the Google REST APIs rk deploy uses, driven by the real clients.

One ThreadingHTTPServer on 127.0.0.1 serves Cloud Run v2, Secret Manager v1, Artifact Registry
v1, Cloud Build v1, IAM v1 (service accounts) and Cloud Storage JSON (their paths do not
collide). It speaks their wire
format (camelCase JSON, integer enums, long-running operations polled by name, google.rpc
errors) and records every request so tests assert what was asked.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SUCCEEDED = 4  # run_v2.Condition.State.CONDITION_SUCCEEDED
BUILD_SUCCESS, BUILD_FAILURE = 3, 4  # cloudbuild_v1.Build.Status
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class GoogleFake:
    """State and a request log; ``fail[(METHOD, path regex)] = (code, message)`` injects errors."""

    calls: list[Call] = field(default_factory=list)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, list[bytes]] = field(default_factory=dict)
    repositories: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    builds: list[dict[str, Any]] = field(default_factory=list)
    service_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    # Like fail, for the first N matching calls only: [code, message, N].
    flaky: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    build_status: int = BUILD_SUCCESS
    endpoint: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def requests(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.search(pattern, c.path)]

    # -- helpers -----------------------------------------------------------------------

    def _operation(self, prefix: str, response: dict[str, Any], type_url: str) -> dict[str, Any]:
        name = f"{prefix}/operations/op-{next(self._ids)}"
        self.operations[name] = {
            "name": name,
            "done": True,
            "response": {"@type": f"type.googleapis.com/{type_url}", **response},
        }
        # Not done when returned, so the client really polls GET .../operations/ID once.
        return {"name": name, "done": False}

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        self.calls.append(Call(method, path, query, body))
        for (fail_method, pattern), (code, message) in self.fail.items():
            if fail_method == method and re.search(pattern, path):
                raise _Error(code, message)
        for (fail_method, pattern), state in self.flaky.items():
            if fail_method == method and re.search(pattern, path) and state[2] > 0:
                state[2] -= 1
                raise _Error(state[0], state[1])
        for route_method, pattern, handler in _ROUTES:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return handler(self, match, query, body)
        raise _Error(404, f"fake: no route for {method} {path}")

    # -- Cloud Run v2 ------------------------------------------------------------------

    def create_service(self, m: re.Match[str], q: dict[str, list[str]], body: Any) -> Any:
        parent, service_id = m["parent"], q["serviceId"][0]
        name = f"{parent}/services/{service_id}"
        if name in self.services:
            raise _Error(409, f"Resource '{service_id}' already exists.")
        region = parent.split("/")[3]
        uri = f"https://{service_id}-abc123xyz-uc.a.run.app"
        service = {
            **body,
            "name": name,
            "uri": uri,
            "urls": [f"https://{service_id}-123456789.{region}.run.app", uri],
            "generation": "1",
            "etag": "etag-1",
            "terminalCondition": {"type": "Ready", "state": SUCCEEDED},
            "latestReadyRevision": f"{name}/revisions/{service_id}-00001",
        }
        self.services[name] = service
        return self._operation(parent, service, "google.cloud.run.v2.Service")

    def get_service(self, m: re.Match[str], q: Any, body: Any) -> Any:
        if m["name"] not in self.services:
            raise _Error(404, f"Resource '{m['name']}' was not found")
        return self.services[m["name"]]

    def update_service(self, m: re.Match[str], q: Any, body: Any) -> Any:
        old = self.get_service(m, q, body)
        generation = int(old["generation"]) + 1
        service = {
            **old,
            **body,
            "generation": str(generation),
            "etag": f"etag-{generation}",
            "latestReadyRevision": f"{m['name']}/revisions/r-{generation:05d}",
        }
        for output in ("uri", "urls", "terminalCondition"):
            service[output] = old[output]
        self.services[m["name"]] = service
        return self._operation(m["parent"], service, "google.cloud.run.v2.Service")

    def delete_service(self, m: re.Match[str], q: Any, body: Any) -> Any:
        service = self.get_service(m, q, body)
        del self.services[m["name"]]
        return self._operation(m["parent"], service, "google.cloud.run.v2.Service")

    def get_operation(self, m: re.Match[str], q: Any, body: Any) -> Any:
        return self.operations[m["name"]]

    def get_policy(self, m: re.Match[str], q: Any, body: Any) -> Any:
        return self.policies.get(m["resource"], {"etag": "BwAAAA=="})

    def set_policy(self, m: re.Match[str], q: Any, body: Any) -> Any:
        self.policies[m["resource"]] = {**body["policy"], "etag": "BwBBBB=="}
        return self.policies[m["resource"]]

    # -- Secret Manager v1 -------------------------------------------------------------

    def create_secret(self, m: re.Match[str], q: dict[str, list[str]], body: Any) -> Any:
        name = f"{m['parent']}/secrets/{q['secretId'][0]}"
        if name in self.secrets:
            raise _Error(409, f"Secret [{name}] already exists.")
        self.secrets[name] = {**body, "name": name}
        self.versions[name] = []
        return self.secrets[name]

    def get_secret(self, m: re.Match[str], q: Any, body: Any) -> Any:
        if m["name"] not in self.secrets:
            raise _Error(404, f"Secret [{m['name']}] not found or has no versions.")
        return self.secrets[m["name"]]

    def delete_secret(self, m: re.Match[str], q: Any, body: Any) -> Any:
        self.get_secret(m, q, body)
        del self.secrets[m["name"]]
        return {}

    def add_version(self, m: re.Match[str], q: Any, body: Any) -> Any:
        import base64

        self.get_secret(m, q, body)
        data = base64.b64decode(body["payload"]["data"])
        self.versions[m["name"]].append(data)
        return {"name": f"{m['name']}/versions/{len(self.versions[m['name']])}", "state": 1}

    def latest_version(self, m: re.Match[str], q: Any, body: Any) -> Any:
        versions = self.versions.get(m["name"]) or []
        if not versions:
            raise _Error(404, f"Secret Version [{m['name']}/versions/latest] not found.")
        return {"name": f"{m['name']}/versions/{len(versions)}", "state": 1}

    # -- IAM v1 service accounts ---------------------------------------------------------

    def get_account(self, m: re.Match[str], q: Any, body: Any) -> Any:
        if m["email"] not in self.service_accounts:
            raise _Error(404, f"Unknown service account {m['email']}")
        return self.service_accounts[m["email"]]

    def create_account(self, m: re.Match[str], q: Any, body: Any) -> Any:
        project = m["project"]
        email = f"{body['accountId']}@{project}.iam.gserviceaccount.com"
        if email in self.service_accounts:
            raise _Error(409, f"Service account {body['accountId']} already exists")
        account = {**body["serviceAccount"], "email": email, "projectId": project,
                   "name": f"projects/{project}/serviceAccounts/{email}"}  # fmt: skip
        self.service_accounts[email] = account
        return account

    # -- Artifact Registry v1 / Cloud Build v1 / Storage ---------------------------------

    def get_repository(self, m: re.Match[str], q: Any, body: Any) -> Any:
        if m["name"] not in self.repositories:
            raise _Error(404, f"Requested entity was not found: {m['name']}")
        return self.repositories[m["name"]]

    def create_repository(self, m: re.Match[str], q: dict[str, list[str]], body: Any) -> Any:
        name = f"{m['parent']}/repositories/{q['repositoryId'][0]}"
        self.repositories[name] = {**body, "name": name}
        type_url = "google.devtools.artifactregistry.v1.Repository"
        return self._operation(m["parent"], self.repositories[name], type_url)

    def create_build(self, m: re.Match[str], q: Any, body: Any) -> Any:
        project = m["project"]
        build_id = f"build-{next(self._ids)}"
        image = body["images"][0]
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
        build = {
            **body,
            "id": build_id,
            "projectId": project,
            "status": self.build_status,
            "statusDetail": "" if self.build_status == BUILD_SUCCESS else "step 0 exited 1",
            "logUrl": f"https://console.cloud.google.com/cloud-build/builds/{build_id}",
            "results": {"images": [{"name": image, "digest": digest}]},
        }
        self.builds.append(build)
        name = f"operations/build/{project}/{build_id}"
        self.operations[name] = {
            "name": name,
            "done": True,
            "metadata": {
                "@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata",
                "build": build,
            },
            "response": {
                "@type": "type.googleapis.com/google.devtools.cloudbuild.v1.Build",
                **build,
            },
        }
        return {"name": name, "done": False}

    def get_bucket(self, m: re.Match[str], q: Any, body: Any) -> Any:
        if m["bucket"] not in self.buckets:
            raise _Error(404, "The specified bucket does not exist.")
        return self.buckets[m["bucket"]]

    def create_bucket(self, m: re.Match[str], q: Any, body: Any) -> Any:
        self.buckets[body["name"]] = {"kind": "storage#bucket", **body}
        return self.buckets[body["name"]]

    def upload(self, m: re.Match[str], q: Any, body: Any) -> Any:
        metadata, data = body
        self.objects[f"{m['bucket']}/{metadata['name']}"] = data
        return {"kind": "storage#object", "bucket": m["bucket"], "size": str(len(data)), **metadata}


_P = r"projects/[^/]+/locations/[^/]+"
_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", rf"/v2/(?P<parent>{_P})/services", GoogleFake.create_service),
    ("GET", rf"/v2/(?P<resource>{_P}/services/[^/:]+):getIamPolicy", GoogleFake.get_policy),
    ("POST", rf"/v2/(?P<resource>{_P}/services/[^/:]+):setIamPolicy", GoogleFake.set_policy),
    ("GET", rf"/v2/(?P<name>(?P<parent>{_P})/services/[^/:]+)", GoogleFake.get_service),
    ("PATCH", rf"/v2/(?P<name>(?P<parent>{_P})/services/[^/:]+)", GoogleFake.update_service),
    ("DELETE", rf"/v2/(?P<name>(?P<parent>{_P})/services/[^/:]+)", GoogleFake.delete_service),
    ("GET", rf"/v2/(?P<name>{_P}/operations/[^/]+)", GoogleFake.get_operation),
    ("POST", r"/v1/(?P<parent>projects/[^/]+)/secrets", GoogleFake.create_secret),
    ("GET", r"/v1/(?P<resource>projects/[^/]+/secrets/[^/:]+):getIamPolicy", GoogleFake.get_policy),
    (
        "POST",
        r"/v1/(?P<resource>projects/[^/]+/secrets/[^/:]+):setIamPolicy",
        GoogleFake.set_policy,
    ),
    ("POST", r"/v1/(?P<name>projects/[^/]+/secrets/[^/:]+):addVersion", GoogleFake.add_version),
    (
        "GET",
        r"/v1/(?P<name>projects/[^/]+/secrets/[^/:]+)/versions/latest",
        GoogleFake.latest_version,
    ),
    ("GET", r"/v1/(?P<name>projects/[^/]+/secrets/[^/:]+)", GoogleFake.get_secret),
    ("DELETE", r"/v1/(?P<name>projects/[^/]+/secrets/[^/:]+)", GoogleFake.delete_secret),
    (
        "GET",
        r"/v1/projects/(?P<project>[^/]+)/serviceAccounts/(?P<email>[^/]+)",
        GoogleFake.get_account,
    ),
    ("POST", r"/v1/projects/(?P<project>[^/]+)/serviceAccounts", GoogleFake.create_account),
    ("GET", rf"/v1/(?P<name>{_P}/repositories/[^/]+)", GoogleFake.get_repository),
    ("POST", rf"/v1/(?P<parent>{_P})/repositories", GoogleFake.create_repository),
    ("GET", rf"/v1/(?P<name>{_P}/operations/[^/]+)", GoogleFake.get_operation),
    ("POST", r"/v1/projects/(?P<project>[^/]+)/builds", GoogleFake.create_build),
    ("GET", r"/v1/(?P<name>operations/build/.+)", GoogleFake.get_operation),
    ("GET", r"/storage/v1/b/(?P<bucket>[^/]+)", GoogleFake.get_bucket),
    ("POST", r"/storage/v1/b", GoogleFake.create_bucket),
    ("POST", r"/upload/storage/v1/b/(?P<bucket>[^/]+)/o", GoogleFake.upload),
]


class _Error(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, Any], bytes]:
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    parts = [p for p in raw.split(b"--" + boundary) if p.strip() not in (b"", b"--")]
    metadata_part, data_part = parts[0], parts[1]
    metadata = json.loads(metadata_part.split(b"\r\n\r\n", 1)[1])
    return metadata, data_part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")


def _handler(fake: GoogleFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = self.headers.get("Content-Type", "")
            body: Any
            if content_type.startswith("multipart/related"):
                body = _multipart(content_type, raw)
            else:
                body = json.loads(raw) if raw else None
            try:
                status, answer = (
                    200,
                    fake.handle(self.command, parts.path, parse_qs(parts.query), body),
                )
            except _Error as error:
                status = error.code
                answer = {
                    "error": {
                        "code": error.code,
                        "message": error.message,
                        "status": _STATUS.get(error.code, "UNKNOWN"),
                    }
                }
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve_google_fake() -> Iterator[GoogleFake]:
    """Run a fresh fake on 127.0.0.1:0 (``yield from`` it in a fixture)."""
    fake = GoogleFake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
