"""gcp-cloud-run finds its project as google-auth does: --project > reward-kit.toml >
$GOOGLE_CLOUD_PROJECT > $GCLOUD_PROJECT > the $GOOGLE_APPLICATION_CREDENTIALS key file's project >
$CLOUDSDK_CORE_PROJECT > gcloud's default project (its configuration files) > the rest of
Application Default Credentials; found nowhere, the error names every place it looked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reward_kit._errors import ConfigurationError
from reward_kit.cli import cli
from reward_kit.deploy import (
    CloudRunOptions,
    CloudRunTarget,
    DeployConfig,
    _registry,
    resolve_deploy,
)

from ._gcp_fake import GoogleFake, serve_google_fake

google_auth = pytest.importorskip("google.auth")


@pytest.fixture(autouse=True)
def no_adc(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """google.auth.default() finds no credentials unless a test gives some; calls recorded."""
    from google.auth.exceptions import DefaultCredentialsError

    calls: list[str] = []

    def default(*args: Any, **kwargs: Any) -> Any:
        calls.append("default")
        raise DefaultCredentialsError("no credentials in this test")

    monkeypatch.setattr(google_auth, "default", default)
    return calls


def adc(monkeypatch: pytest.MonkeyPatch, project: str | None) -> None:
    monkeypatch.setattr(google_auth, "default", lambda *args, **kwargs: (object(), project))


def gcloud(folder: Path, project: str, configuration: str = "default") -> Path:
    """A gcloud configuration folder whose configuration ``configuration`` sets ``project``."""
    (folder / "configurations").mkdir(parents=True, exist_ok=True)
    path = folder / "configurations" / f"config_{configuration}"
    path.write_text(f"[core]\naccount = me@example.com\nproject = {project}\n\n[compute]\n")
    return path


def key_file(folder: Path, project: str) -> Path:
    """A service account key file as google-auth reads it (a real RSA key: it parses it)."""
    pytest.importorskip("cryptography", reason="google-auth needs it to read a key file")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "x",
        "private_key": pem,
        "client_email": f"ci@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = folder / "key.json"
    path.write_text(json.dumps(info))
    return path


def test_each_place_wins_over_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_folder = tmp_path / "gcloud"
    gcloud(config_folder, "from-gcloud-1")
    (tmp_path / "key.json").write_text(json.dumps({"project_id": "from-key-file-1"}))
    environ = {
        "CLOUDSDK_CONFIG": str(config_folder),
        "CLOUDSDK_CORE_PROJECT": "from-cloudsdk-1",
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "key.json"),
        "GCLOUD_PROJECT": "from-legacy-1",
        "GOOGLE_CLOUD_PROJECT": "from-google-1",
    }
    file = DeployConfig(targets={"gcp-cloud-run": {"project": "from-file-1"}})
    flags = {"project": "from-flag-1"}
    adc(monkeypatch, "from-adc-1")

    def resolved(environ: dict[str, str], **given: Any) -> str:
        options = resolve_deploy("gcp-cloud-run", environ=environ, **given).options
        assert isinstance(options, CloudRunOptions)
        return options.project

    assert resolved(environ, config=file, flags=flags) == "from-flag-1"
    assert resolved(environ, config=file) == "from-file-1"
    assert resolved(environ) == "from-google-1"
    del environ["GOOGLE_CLOUD_PROJECT"]
    assert resolved(environ) == "from-legacy-1"
    del environ["GCLOUD_PROJECT"]
    assert resolved(environ) == "from-key-file-1"
    del environ["GOOGLE_APPLICATION_CREDENTIALS"]
    assert resolved(environ) == "from-cloudsdk-1"
    del environ["CLOUDSDK_CORE_PROJECT"]
    assert resolved(environ) == "from-gcloud-1"
    del environ["CLOUDSDK_CONFIG"]
    assert resolved(environ) == "from-adc-1"


def test_the_order_is_google_auths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The audit's probe: a key file and a gcloud default project; google-auth itself decides.
    monkeypatch.undo()  # the real google.auth.default()
    gcloud(tmp_path / "gcloud", "gcloud-default-1")
    environ = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file(tmp_path, "key-project-1")),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
    }
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    for legacy in (None, "legacy-env-1"):
        if legacy is not None:
            environ["GCLOUD_PROJECT"] = legacy
            monkeypatch.setenv("GCLOUD_PROJECT", legacy)
        expected = google_auth.default()[1]
        assert expected == (legacy or "key-project-1")
        options = resolve_deploy("gcp-cloud-run", environ=environ).options
        assert isinstance(options, CloudRunOptions)
        assert options.project == expected


def test_an_unreadable_key_file_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "key.json").write_text("not json")
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "key.json")}
    with pytest.raises(ConfigurationError, match=r"\$GOOGLE_APPLICATION_CREDENTIALS names"):
        resolve_deploy("gcp-cloud-run", environ=environ)


def test_gcloud_default_project_follows_the_active_configuration(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = home / ".config" / "gcloud"  # gcloud's default folder, under $HOME
    gcloud(folder, "default-conf-1")
    gcloud(folder, "work-conf-1", configuration="work")
    environ = {"HOME": str(home)}

    def resolved() -> str:
        options = resolve_deploy("gcp-cloud-run", environ=environ).options
        assert isinstance(options, CloudRunOptions)
        return options.project

    assert resolved() == "default-conf-1"  # no active_config file: "default"
    (folder / "active_config").write_text("work\n")
    assert resolved() == "work-conf-1"
    environ["CLOUDSDK_ACTIVE_CONFIG_NAME"] = "default"  # gcloud's own override
    assert resolved() == "default-conf-1"
    # $CLOUDSDK_CONFIG moves the whole folder.
    other = tmp_path / "elsewhere"
    gcloud(other, "elsewhere-1")
    environ["CLOUDSDK_CONFIG"] = str(other)
    assert resolved() == "elsewhere-1"


def test_a_configuration_without_a_project_falls_through_to_adc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "gcloud"
    (folder / "configurations").mkdir(parents=True)
    (folder / "configurations" / "config_default").write_text("[core]\naccount = me@x.com\n")
    adc(monkeypatch, "from-adc-1")
    options = resolve_deploy("gcp-cloud-run", environ={"CLOUDSDK_CONFIG": str(folder)}).options
    assert isinstance(options, CloudRunOptions)
    assert options.project == "from-adc-1"


def test_a_bad_project_names_the_file_it_came_from(tmp_path: Path) -> None:
    path = gcloud(tmp_path, "Not_A_Project")
    with pytest.raises(ConfigurationError) as raised:
        resolve_deploy("gcp-cloud-run", environ={"CLOUDSDK_CONFIG": str(tmp_path)})
    assert str(raised.value) == (
        f"gcp-cloud-run: 'Not_A_Project' is not a Google Cloud project ID (from gcloud's "
        f"configuration {path})"
    )


def test_an_unreadable_gcloud_configuration_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "configurations").mkdir()
    broken = tmp_path / "configurations" / "config_default"
    broken.write_text("project = no section header\n")
    with pytest.raises(ConfigurationError, match=f"gcloud's configuration {broken} cannot be read"):
        resolve_deploy("gcp-cloud-run", environ={"CLOUDSDK_CONFIG": str(tmp_path)})


def test_found_nowhere_the_error_names_every_place_looked(
    tmp_path: Path, no_adc: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        resolve_deploy("gcp-cloud-run", environ={"HOME": str(tmp_path)})
    message = str(raised.value)
    for place in (
        "--project",
        "[deploy.gcp-cloud-run] in reward-kit.toml",
        "$GOOGLE_CLOUD_PROJECT",
        "$GCLOUD_PROJECT",
        "$GOOGLE_APPLICATION_CREDENTIALS",
        "$CLOUDSDK_CORE_PROJECT",
        "gcloud config set project",
        "$CLOUDSDK_CONFIG",
        "Application Default Credentials",
    ):
        assert place in message, place
    assert no_adc == ["default"]  # ADC was asked, last
    assert message.startswith("gcp-cloud-run needs a project: pass --project, ")


def test_adc_is_not_asked_when_another_place_gives_the_project(no_adc: list[str]) -> None:
    resolve_deploy("gcp-cloud-run", environ={"GOOGLE_CLOUD_PROJECT": "my-proj-1"})
    assert no_adc == []


@pytest.fixture
def google_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleFake]:
    pytest.importorskip("google.cloud.run_v2")
    from google.auth.credentials import AnonymousCredentials

    served = serve_google_fake()
    fake = next(served)
    target = CloudRunTarget(credentials=AnonymousCredentials(), endpoint=fake.endpoint)
    monkeypatch.setitem(_registry.FACTORIES, "gcp-cloud-run", lambda: target)
    yield fake
    served.close()


def test_rk_deploy_uses_gclouds_project(
    google_fake: GoogleFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no reward-kit.toml
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "CLOUDSDK_ACTIVE_CONFIG_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    gcloud(tmp_path / "gcloud", "from-gcloud-1")
    result = CliRunner().invoke(cli, ["deploy", "status", "math", "--target", "gcp-cloud-run"])
    assert result.exit_code != 0  # no such service in the fake: it was looked for...
    [get] = google_fake.requests("GET", r"/services/math$")
    assert get.path.startswith("/v2/projects/from-gcloud-1/locations/us-central1/")  # ...here
