"""What rk build and rk deploy bundle is shown, secret-looking files are called out, and
--include (or [build] include) chooses the files exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._clouds import GCP_ARGS, google_fake_fixture, invoke  # noqa: F401 - fixture
from ._gcp_fake import GoogleFake

pytest.importorskip("google.cloud.run_v2")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "pkg").mkdir(parents=True)
    (folder / "rewards.py").write_text(
        "from helper import normalise\nfrom reward_kit import reward_function\n\n\n"
        "@reward_function\ndef exact(messages, ground_truth=None, **kwargs):\n"
        "    return float(normalise(messages[-1].text) == ground_truth)\n"
    )
    (folder / "helper.py").write_text("def normalise(text):\n    return text.strip()\n")
    (folder / "settings.py").write_text('AWS_KEY = "AKIAABCDEFGHIJKLMNOP"\n')
    (folder / "deploy_key.py").write_text(
        'KEY = """-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"""\n'
    )
    (folder / ".env").write_text("OPENAI_API_KEY=sk-123\n")
    (folder / "data.json").write_text("{}")
    return folder


def test_rk_build_lists_every_file_and_warns_about_secret_looking_ones(
    project: Path, tmp_path: Path
) -> None:
    result = invoke("build", str(project / "rewards.py"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    listed = result.output.split("your code in the artifact: ", 1)[1].splitlines()[0]
    assert listed.split(", ") == [
        "app/src/deploy_key.py", "app/src/helper.py", "app/src/rewards.py", "app/src/settings.py"
    ]  # fmt: skip
    assert "WARNING: app/src/settings.py: it contains what looks like an AWS access key ID" in (
        result.output
    )
    assert "WARNING: app/src/deploy_key.py: it contains what looks like a private key" in (
        result.output
    )


def test_include_bundles_exactly_the_listed_files(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    out = tmp_path / "out"
    result = invoke("build", "rewards.py", "--out", str(out), "--include", "helper.py",
                    "--include", "data.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    app = out / "context" / "app"
    assert sorted(p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file()) == [
        "src/data.json", "src/helper.py", "src/rewards.py"
    ]  # fmt: skip
    assert "WARNING" not in result.output
    # An explicitly listed secret is bundled (the user chose it) but still called out.
    named = invoke("build", "rewards.py", "--out", str(out), "--include", "helper.py",
                   "--include", ".env")  # fmt: skip
    assert "WARNING: app/src/.env: its name looks like a secret (.env)" in named.output
    outside = invoke("build", "rewards.py", "--out", str(out), "--include", str(tmp_path))
    assert outside.exit_code != 0
    assert "not inside the folder of a reward file" in str(outside.exception)
    missing = invoke("build", "rewards.py", "--out", str(out), "--include", "nope.py")
    assert "--include nope.py: no such file" in str(missing.exception)


def test_build_include_from_the_config_file(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "reward-kit.toml").write_text('[build]\ninclude = ["helper.py"]\n')
    monkeypatch.chdir(project)
    out = tmp_path / "out"
    result = invoke("build", "rewards.py", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "your code in the artifact: app/src/helper.py, app/src/rewards.py\n" in result.output
    (project / "reward-kit.toml").write_text('[build]\ninclude = "helper.py"\n')
    bad = invoke("build", "rewards.py", "--out", str(out))
    assert "[build] include must be a list of paths" in str(bad.exception)


def test_a_package_target_with_a_key_file_is_called_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "rewards.py").write_text(
        "from reward_kit import reward_function\n\n\n@reward_function\n"
        "def one(messages, **kwargs):\n    return 1.0\n"
    )
    (pkg / "server.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = invoke("build", "mypkg.rewards:one", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "WARNING: app/mypkg/server.pem: its name looks like a secret (*.pem)" in result.output


def test_deploy_reports_the_bundle_too(
    google_fake: GoogleFake, project: Path, tmp_path: Path
) -> None:
    result = invoke("deploy", str(project / "rewards.py"), *GCP_ARGS, "--dry-run", "--out",
                    str(tmp_path / "plan"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "your code in the artifact: app/src/deploy_key.py" in result.output
    assert "WARNING: app/src/settings.py" in result.output
