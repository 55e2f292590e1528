"""The Lambda zip: self-contained, deterministic, size-checked, and its handler really answers.

The handler runs from the unzipped bundle in an isolated interpreter (``python -I -S``: no
site-packages, only the bundle on sys.path), with function-URL payload v2.0 events.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reward_kit._errors import ConfigurationError
from reward_kit.deploy import DeploySpec
from reward_kit.deploy.artifacts import build_lambda_zip

from ..conftest import QUICKSTART
from ._lambda_events import ITEM, url_event

KEY = "rk_lambda_test_key_0123456789"
TRAINER = "arn:aws:sts::123456789012:assumed-role/trainer/job-7"

# Runs inside the isolated interpreter: argv = bundle dir, events file. Prints one JSON line.
DRIVER = r"""
import json, sys, time
bundle, events_file = sys.argv[1], sys.argv[2]
sys.path.insert(0, bundle)
started = time.perf_counter()
import rk_lambda
import_seconds = time.perf_counter() - started
import fastapi

class Context:
    function_name = "evaluator"
    aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:evaluator"
    memory_limit_in_mb = 1024
    def get_remaining_time_in_millis(self):
        return 30000

results = [rk_lambda.handler(event, Context()) for event in json.load(open(events_file))]
print(json.dumps({"import_seconds": import_seconds, "fastapi": fastapi.__file__,
                  "site": "site" in sys.modules, "results": results}))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("lambda")
    artifacts = build_lambda_zip(DeploySpec(name="quick", sources=(QUICKSTART,)), out)
    assert artifacts.lambda_zip is not None
    unzipped = out / "unzipped"
    with zipfile.ZipFile(artifacts.lambda_zip) as archive:
        archive.extractall(unzipped)
    return artifacts.lambda_zip, unzipped, dataclasses.asdict(artifacts)


def run_isolated(bundle_dir: Path, events: list[dict[str, object]], env: dict[str, str],
                 tmp_path: Path) -> dict[str, object]:  # fmt: skip
    events_file = tmp_path / "events.json"
    events_file.write_text(json.dumps(events))
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", DRIVER, str(bundle_dir), str(events_file)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


def test_bundle_layout_and_size_facts(bundle: tuple[Path, Path, dict[str, object]]) -> None:
    zip_path, _unzipped, extra = bundle
    assert extra["handler"] == "rk_lambda.handler"
    assert extra["runtime"] == "python3.11"
    assert extra["upload_via_s3"] is False
    assert 1_000_000 < zip_path.stat().st_size == extra["zipped_bytes"]
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert "rk_lambda.py" in names
    assert "src/rewards.py" in names
    assert "mangum/__init__.py" in names
    assert "fastapi/__init__.py" in names
    # Only Linux x86_64 CPython 3.11 binaries, and nothing tied to this machine.
    native = [n for n in names if n.endswith(".so")]
    assert native
    assert all("x86_64-linux-gnu" in n or "abi3" in n for n in native)
    assert not any(n.startswith("bin/") for n in names)
    if sys.version_info[:2] != (3, 11):
        return  # bytecode is only shipped when built by the target's Python version
    # Bytecode ships (Lambda cannot write it), hash-based so it holds no timestamps.
    assert "__pycache__/rk_lambda.cpython-311.pyc" in names
    assert "reward_kit/__pycache__/__init__.cpython-311.pyc" in names
    with zipfile.ZipFile(zip_path) as archive:
        header = archive.read("__pycache__/rk_lambda.cpython-311.pyc")[:16]
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, unchecked (PEP 552)
    assert not any(n.endswith("direct_url.json") for n in names)


# Nothing behind Mangum runs an ASGI server or writes to a terminal: the bundle installs the
# lambda-runtime extra, not the server one (docs/deploy.md).
LEFT_OUT = {
    *("uvicorn", "uvloop", "httptools", "websockets", "watchfiles"),  # the ASGI server
    *("rich", "pygments", "yaml"),
}
ZIPPED_BUDGET = 8 * 1024 * 1024  # issue 17: at most 8 MB zipped (it was 17.6 MB)


def test_bundle_leaves_out_the_server_stack_and_fits_its_budget(
    bundle: tuple[Path, Path, dict[str, object]],
) -> None:
    zip_path, _unzipped, extra = bundle
    with zipfile.ZipFile(zip_path) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    # Packages (yaml, _yaml...) and the distributions that ship them (PyYAML-6.0.dist-info).
    names = {top.lower().lstrip("_").removesuffix(".py") for top in tops}
    names |= {top.split("-")[0].lower() for top in tops if top.endswith(".dist-info")}
    assert not names & (LEFT_OUT | {"pyyaml"}), sorted(names & (LEFT_OUT | {"pyyaml"}))
    # What the app does need is there (the runtime behaviour is the tests below).
    assert {"fastapi", "starlette", "pydantic", "mangum", "orjson", "prometheus_client"} <= names
    assert zip_path.stat().st_size == extra["zipped_bytes"] < ZIPPED_BUDGET


def test_handler_answers_function_url_events_in_isolation(
    bundle: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    _, unzipped, _ = bundle
    events = [
        url_event("GET", "/health"),
        url_event("POST", "/evaluate/exact_match", body=ITEM,
                  headers={"authorization": f"Bearer {KEY}"}),
        url_event("POST", "/evaluate/exact_match", body=ITEM),
    ]  # fmt: skip
    output = run_isolated(unzipped, events, {"RK_API_KEYS": f"trainer {KEY}"}, tmp_path)
    # Everything came from the bundle: no site-packages, fastapi from the unzipped folder.
    assert output["site"] is False
    assert str(output["fastapi"]).startswith(str(unzipped))
    health, scored, refused = output["results"]  # type: ignore[misc]
    assert health["statusCode"] == 200
    assert json.loads(health["body"])["workers"] == 0  # no processes on Lambda
    assert scored["statusCode"] == 200, scored
    assert json.loads(scored["body"])["score"] == 1.0
    assert refused["statusCode"] == 401


def test_the_lean_bundle_serves_every_route(
    bundle: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    """Without the server extra, the batch route, its per-item validation errors and the
    metrics still work behind Mangum (what the lean bundle left out is never imported)."""
    _, unzipped, _ = bundle
    auth = {"authorization": f"Bearer {KEY}"}
    bad = {"messages": [{"role": 1, "content": "4"}]}
    events = [
        url_event("POST", "/batch_evaluate/exact_match", body={"items": [ITEM, bad]},
                  headers=auth),
        url_event("POST", "/evaluate/exact_match", body={"messages": []}, headers=auth),
        url_event("GET", "/metrics", headers=auth),
    ]  # fmt: skip
    output = run_isolated(unzipped, events, {"RK_API_KEYS": f"trainer {KEY}"}, tmp_path)
    batch, invalid, metrics = output["results"]  # type: ignore[misc]
    assert batch["statusCode"] == 200, batch
    good, refused = json.loads(batch["body"])["results"]
    assert (good["status"], good["result"]["score"]) == ("ok", 1.0)
    assert refused["status"] == "invalid"
    assert refused["error"]["message"] == "items.1.messages.0.role: Input should be a valid string"
    assert invalid["statusCode"] == 422
    assert (
        "messages: List should have at least 1 item"
        in json.loads(invalid["body"])["error"]["message"]
    )
    assert metrics["statusCode"] == 200
    assert 'rk_items_total{function="exact_match",status="ok"} 1.0' in metrics["body"]


def test_handler_trusts_the_iam_authorizer_block(
    bundle: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    _, unzipped, _ = bundle
    events = [
        url_event("POST", "/evaluate/exact_match", body=ITEM, iam_arn=TRAINER),
        url_event("POST", "/evaluate/exact_match", body=ITEM,
                  iam_arn="arn:aws:iam::123456789012:user/outsider"),
        url_event("GET", "/functions"),
    ]  # fmt: skip
    env = {"RK_AUTH": "aws-iam", "RK_AWS_ALLOWED_ARNS": "arn:aws:sts::123456789012:*/trainer/*"}
    output = run_isolated(unzipped, events, env, tmp_path)
    allowed, outsider, anonymous = output["results"]  # type: ignore[misc]
    assert allowed["statusCode"] == 200, allowed
    assert json.loads(allowed["body"])["score"] == 1.0
    assert outsider["statusCode"] == 403
    assert anonymous["statusCode"] == 401


def test_a_broken_setting_fails_the_cold_start_clearly(
    bundle: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    _, unzipped, _ = bundle
    (tmp_path / "events.json").write_text("[]")
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", DRIVER, str(unzipped), str(tmp_path / "events.json")],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    # The baked-in default is api-key, and no key was configured.
    assert result.returncode != 0
    assert "api-key auth needs keys" in result.stderr
    assert "set RK_API_KEY_SECRET_ARN to the ARN" in result.stderr


@pytest.mark.slow
def test_same_input_same_bytes_and_size_limits(
    bundle: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    zip_path, _, extra = bundle
    spec = DeploySpec(name="quick", sources=(QUICKSTART,))
    again = build_lambda_zip(spec, tmp_path / "again", zipped_limit=1024)
    assert again.lambda_zip is not None
    digest = hashlib.sha256(again.lambda_zip.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    # Over the zipped limit: still built, but it must go through S3.
    assert again.upload_via_s3 is True
    assert "must go through S3" in again.size_note
    limit = int(str(extra["unzipped_bytes"])) - 1
    with pytest.raises(ConfigurationError, match=r"unzipped, over Lambda's .* limit"):
        build_lambda_zip(spec, tmp_path / "big", unzipped_limit=limit)


def test_secret_keys_come_from_secrets_manager() -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from reward_kit.deploy.artifacts.lambda_handler import read_secret_keys

    with moto.mock_aws():
        client = boto3.client(
            "secretsmanager", region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        arn = client.create_secret(Name="rk/quick", SecretString="deploy sha256:" + "0" * 64)["ARN"]
        assert read_secret_keys(arn, client=client) == ("deploy sha256:" + "0" * 64,)
        with pytest.raises(ConfigurationError, match="cannot read the API key secret"):
            read_secret_keys(arn + "-missing", client=client)
