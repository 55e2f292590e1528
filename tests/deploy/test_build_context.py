"""The Docker build context: code, requirements, reward-kit's wheel, a hadolint-clean Dockerfile."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from dockerfile_parse import DockerfileParser

from reward_kit._errors import ConfigurationError, LoadError
from reward_kit.cli import cli
from reward_kit.deploy import DeploySpec
from reward_kit.deploy.artifacts import build_docker_context
from reward_kit.deploy.artifacts._repo_files import render_repository_files
from reward_kit.deploy.artifacts._sources import stage_sources
from reward_kit.deploy.artifacts._wheel import build_self_wheel

from ..conftest import QUICKSTART, ROOT

HADOLINT = Path(sys.executable).parent / "hadolint"

REWARDS_WITH_HELPER = """
from helper import normalise
from reward_kit import EvaluateResult, reward_function


@reward_function(requirements=["sympy>=1.12"])
def symbolic(messages, ground_truth=None, **kwargs):
    return EvaluateResult(score=float(normalise(messages[-1].text) == ground_truth), reason="")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "rewards.py").write_text(REWARDS_WITH_HELPER)
    (folder / "helper.py").write_text("def normalise(text):\n    return text.strip()\n")
    (folder / "notes.txt").write_text("not code")
    return folder


def lint(dockerfile: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", str(dockerfile)], capture_output=True, text=True
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


def test_context_has_code_requirements_wheel_and_dockerfile(project: Path, tmp_path: Path) -> None:
    spec = DeploySpec(
        name="symbolic", sources=(f"{project}/rewards.py",), requirements=("numpy<3", "sympy>=1.12")
    )
    artifacts = build_docker_context(spec, tmp_path / "out")
    context = artifacts.docker_context
    assert context is not None
    files = sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file())
    assert files == [
        ".dockerignore",
        "Dockerfile",
        "app/src/helper.py",  # a sibling module the reward file imports
        "app/src/rewards.py",
        "requirements.txt",
        "wheels/reward_kit-0.1.0-py3-none-any.whl",
    ]
    # Decorator requirements first, then --requirements, each once.
    lines = (context / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["sympy>=1.12", "numpy<3"]
    parsed = DockerfileParser(path=str(context / "Dockerfile"))
    assert parsed.baseimage == "python:3.11-slim"  # the ARG default, substituted
    instructions = [(i["instruction"], i["value"]) for i in parsed.structure]
    # Both stages build FROM the overridable argument.
    assert [v for n, v in instructions if n == "FROM"] == [
        "${BASE_IMAGE} AS build",
        "${BASE_IMAGE}",
    ]
    assert ("USER", "10001:10001") in instructions
    assert ("EXPOSE", "8080") in instructions
    assert any(name == "HEALTHCHECK" and "/health" in value for name, value in instructions)
    assert parsed.envs["RK_TARGETS"] == "/app/src/rewards.py"
    assert parsed.envs["RK_AUTH"] == "api-key"
    assert parsed.envs["PORT"] == "8080"
    assert parsed.envs["RK_HOST"] == "0.0.0.0"
    # No key material and no key file path is baked into the image.
    assert not any("KEY" in name and name != "RK_AUTH" for name in parsed.envs)
    assert lint(context / "Dockerfile") == []


@pytest.mark.parametrize("auth", ["api-key", "google-iam", "aws-iam", "mtls", "none"])
def test_every_auth_mode_renders_a_lint_clean_dockerfile(auth: str, tmp_path: Path) -> None:
    spec = DeploySpec(name="quick", sources=(QUICKSTART,), auth=auth)  # type: ignore[arg-type]
    context = build_docker_context(spec, tmp_path, base_image="localhost/base:1").docker_context
    assert context is not None
    parsed = DockerfileParser(path=str(context / "Dockerfile"))
    assert parsed.baseimage == "localhost/base:1"
    if auth == "none":
        assert parsed.envs["RK_ALLOW_UNAUTHENTICATED"] == "true"
    else:
        assert parsed.envs["RK_AUTH"] == auth
    assert lint(context / "Dockerfile") == []
    compose = (tmp_path / "docker-compose.yml").read_text()
    assert '"127.0.0.1:8080:8080"' in compose
    assert "read_only: true" in compose
    assert ("/run/secrets/rk_api_keys" in compose) == (auth == "api-key")


def test_hadolint_does_catch_problems(tmp_path: Path) -> None:
    # The lint gate is only worth something if it fails on a bad file.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install fastapi\nCMD rk-serve\n")
    codes = {finding["code"] for finding in lint(bad)}
    assert {"DL3006", "DL3013", "DL3042", "DL3025"} <= codes


def test_self_wheel_is_the_running_package_and_deterministic(tmp_path: Path) -> None:
    first = build_self_wheel(tmp_path / "a")
    second = build_self_wheel(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("reward_kit-0.1.0.dist-info/METADATA").decode()
        entry_points = wheel.read("reward_kit-0.1.0.dist-info/entry_points.txt").decode()
    assert "reward_kit/deploy/artifacts/templates/Dockerfile.in" in names
    assert "reward_kit/py.typed" in names
    assert not any("__pycache__" in name for name in names)
    assert "Version: 0.1.0" in metadata
    assert "Provides-Extra: server" in metadata
    assert "rk-serve = reward_kit.cli:serve_main" in entry_points


def test_a_reward_file_that_does_not_import_fails_first(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    spec = DeploySpec(name="broken", sources=(str(broken),))
    with pytest.raises(LoadError, match="not_a_module_anywhere"):
        build_docker_context(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_module_targets_outside_the_project_are_refused(tmp_path: Path) -> None:
    spec = DeploySpec(name="ext", sources=("json:dumps",))
    with pytest.raises(ConfigurationError, match="not a reward file or a package under"):
        stage_sources(spec, tmp_path)


def test_repository_files_are_current() -> None:
    for name, text in render_repository_files().items():
        assert (ROOT / name).read_text() == text, (
            f"{name} is out of date: run python -m reward_kit.deploy.artifacts._repo_files"
        )
    assert lint(ROOT / "Dockerfile") == []


def test_rk_build_docker_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["build", QUICKSTART, "--out", str(tmp_path), "--name", "quick", "--auth", "none"]
    )
    assert result.exit_code == 0, result.output
    assert "docker build -t reward-kit/quick:0.1.0" in result.output
    assert (tmp_path / "context" / "Dockerfile").is_file()
    bad = runner.invoke(cli, ["build", QUICKSTART, "--out", str(tmp_path), "--name", "Bad_Name"])
    assert bad.exit_code != 0
    assert "invalid deploy name 'Bad_Name'" in str(bad.exception)


CODE_REWARD_VIA_HELPER = """
from reward_kit import reward_function
from reward_kit.rewards import code_execution_reward


def _run_tests(messages, tests):
    return code_execution_reward(messages, ground_truth={"tests": tests})


@reward_function
def solves(messages, ground_truth=None, **kwargs):
    return _run_tests(messages, ground_truth)
"""


def final_stage_runs(dockerfile: Path) -> list[str]:
    parsed = DockerfileParser(path=str(dockerfile))
    stages: list[list[str]] = []
    for instruction in parsed.structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        elif instruction["instruction"] == "RUN":
            stages[-1].append(instruction["value"])
    return stages[-1]


@pytest.mark.parametrize(
    "source",
    ["reward_kit.rewards:code_execution_reward", "reward_kit.rewards:humaneval_reward", "helper"],
)
def test_code_rewards_get_bubblewrap_in_a_lint_clean_image(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if source == "helper":  # a reward that reaches the sandbox through a helper of its own
        (tmp_path / "solver.py").write_text(CODE_REWARD_VIA_HELPER)
        source = str(tmp_path / "solver.py")
    monkeypatch.chdir(tmp_path)
    artifacts = build_docker_context(DeploySpec(name="code", sources=(source,)), tmp_path / "out")
    assert artifacts.sandbox is True
    assert artifacts.docker_context is not None
    dockerfile = artifacts.docker_context / "Dockerfile"
    runs = final_stage_runs(dockerfile)
    assert any(
        "apt-get install -y --no-install-recommends bubblewrap" in run
        and "rm -rf /var/lib/apt/lists/*" in run
        for run in runs
    ), runs
    assert lint(dockerfile) == []


def test_other_rewards_get_no_bubblewrap_unless_asked(tmp_path: Path) -> None:
    spec = DeploySpec(name="quick", sources=(QUICKSTART,))
    plain = build_docker_context(spec, tmp_path / "a")
    assert plain.sandbox is False
    assert plain.docker_context is not None
    assert "bubblewrap" not in (plain.docker_context / "Dockerfile").read_text()
    forced = build_docker_context(spec, tmp_path / "b", sandbox=True)
    assert forced.docker_context is not None
    assert "bubblewrap" in (forced.docker_context / "Dockerfile").read_text()
    assert lint(forced.docker_context / "Dockerfile") == []
    code = DeploySpec(name="code", sources=("reward_kit.rewards:code_execution_reward",))
    off = build_docker_context(code, tmp_path / "c", sandbox=False)
    assert off.docker_context is not None
    assert "bubblewrap" not in (off.docker_context / "Dockerfile").read_text()


def test_rk_build_sandbox_flags(tmp_path: Path) -> None:
    runner = CliRunner()
    code = "reward_kit.rewards:code_execution_reward"
    result = runner.invoke(cli, ["build", code, "--out", str(tmp_path / "a"), "--name", "code"])
    assert result.exit_code == 0, result.output
    assert "sandbox: the image has bubblewrap" in result.output
    result = runner.invoke(cli, ["build", code, "--out", str(tmp_path / "b"), "--no-sandbox"])
    assert result.exit_code == 0, result.output
    assert "bubblewrap" not in (tmp_path / "b" / "context" / "Dockerfile").read_text()


def test_lambda_says_code_rewards_cannot_run_there() -> None:
    from reward_kit.deploy import ArtifactKind, Artifacts, report_artifacts

    class Steps:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def step(self, message: str) -> None:
            self.lines.append(message)

    steps = Steps()
    artifacts = Artifacts(out_dir=Path("."), sandbox=True, files=("src/a.py",))
    report_artifacts(artifacts, ArtifactKind.LAMBDA_ZIP, steps)
    assert steps.lines[0] == "your code in the artifact: src/a.py"
    assert "cannot run on AWS Lambda" in steps.lines[1]
    report_artifacts(artifacts, ArtifactKind.DOCKER, steps)
    assert len(steps.lines) == 3
