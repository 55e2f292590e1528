"""The repository's own Dockerfile, docker-compose.yml and .dockerignore (examples/quickstart).

They come from the same templates as generated contexts; a test checks they are current.
Regenerate after changing a template: ``python -m reward_kit.deploy.artifacts._repo_files``.
"""

from __future__ import annotations

from pathlib import Path

from ._dockerfile import (
    DockerfileInputs,
    auth_environment,
    render_compose,
    render_dockerfile,
    render_dockerignore,
)

__all__ = ["render_repository_files"]

_GENERATOR = "python -m reward_kit.deploy.artifacts._repo_files"
# The repository build installs reward-kit from source, so the context keeps these; tests,
# benchmarks and local secrets stay out.
_REPOSITORY_IGNORES = "tests/\nbench/\ndocs/\n.ci/\n.rk-secrets/\n"


def render_repository_files() -> dict[str, str]:
    """File name -> text for the repository root.

    >>> sorted(render_repository_files())
    ['.dockerignore', 'Dockerfile', 'docker-compose.yml']
    """
    image = "reward-kit/quickstart:latest"
    dockerfile = render_dockerfile(
        DockerfileInputs(
            image=image,
            generator=_GENERATOR,
            copy_install=(
                "COPY pyproject.toml README.md /tmp/reward-kit/",
                "COPY reward_kit/ /tmp/reward-kit/reward_kit/",
            ),
            pip_args='"/tmp/reward-kit[server]"',
            app_source="examples/quickstart/",
            environment={"RK_TARGETS": "/app/rewards.py", **auth_environment("api-key")},
        )
    )
    compose = render_compose(
        name="reward-kit",
        image=image,
        context=".",
        environment={"RK_LOG_LEVEL": "info"},
        api_key_file="./.rk-secrets/api_keys",
        generator=_GENERATOR,
        usage="Start: mkdir -p .rk-secrets && rk keys generate --id me (put the 'ID sha256:...' "
        "line in .rk-secrets/api_keys; keep the key), then docker compose up -d",
    )
    return {
        "Dockerfile": dockerfile,
        "docker-compose.yml": compose,
        ".dockerignore": render_dockerignore() + _REPOSITORY_IGNORES,
    }


def main() -> None:
    root = Path(__file__).resolve().parents[3]
    for name, text in render_repository_files().items():
        (root / name).write_text(text)
        print(f"wrote {root / name}")


if __name__ == "__main__":
    main()
