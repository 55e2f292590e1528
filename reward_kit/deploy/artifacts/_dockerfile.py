"""Rendering the Dockerfile, .dockerignore and docker-compose.yml from the packaged templates.

Templates use ``@@NAME@@`` placeholders because Dockerfiles and compose files are full of
``${...}`` that must stay literal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from ..._version import __version__

__all__ = [
    "API_KEYS_SECRET",
    "DEFAULT_BASE_IMAGE",
    "DockerfileInputs",
    "auth_environment",
    "fill_template",
    "read_template",
    "render_compose",
    "render_dockerfile",
    "render_dockerignore",
]

# Where compose and the local target mount the API key file (the Docker-secret convention).
API_KEYS_SECRET = "/run/secrets/rk_api_keys"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")


def read_template(name: str) -> str:
    return (
        resources.files("reward_kit.deploy.artifacts")
        .joinpath("templates")
        .joinpath(name)
        .read_text()
    )


def fill_template(template: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACEHOLDER.sub(replace, template)


def auth_environment(auth: str) -> dict[str, str]:
    """The non-secret ``RK_*`` settings an image needs for an auth mode.

    >>> auth_environment("none")
    {'RK_ALLOW_UNAUTHENTICATED': 'true'}
    """
    if auth == "none":
        # The container binds 0.0.0.0; rk-serve refuses that without auth unless told.
        return {"RK_ALLOW_UNAUTHENTICATED": "true"}
    return {"RK_AUTH": auth}


@dataclass(frozen=True, kw_only=True)
class DockerfileInputs:
    """What varies between generated Dockerfiles.

    ``copy_install`` are the COPY lines of the build stage, ``pip_args`` what pip installs,
    ``app_source`` the context folder copied to /app, ``environment`` extra ENV values,
    ``system_packages`` Debian packages the final image installs (bubblewrap for the sandbox).
    """

    image: str
    generator: str
    copy_install: Sequence[str]
    pip_args: str
    app_source: str
    environment: Mapping[str, str]
    base_image: str = DEFAULT_BASE_IMAGE
    system_packages: Sequence[str] = ()


def render_dockerfile(inputs: DockerfileInputs) -> str:
    """The Dockerfile text (the result passes hadolint; tests check it)."""
    env_items = sorted(inputs.environment.items())
    env_lines = [f"    {key}={json.dumps(value)}" for key, value in env_items]
    # The template ends its ENV with a continuation; the last value closes it.
    env = " \\\n".join(env_lines) if env_lines else '    RK_LOG_LEVEL="info"'
    return fill_template(
        read_template("Dockerfile.in"),
        {
            "VERSION": __version__,
            "GENERATOR": inputs.generator,
            "IMAGE": inputs.image,
            "BASE_IMAGE": inputs.base_image,
            "COPY_INSTALL": "\n".join(inputs.copy_install),
            "PIP_ARGS": inputs.pip_args,
            "APP_SOURCE": inputs.app_source,
            "ENV": env,
            "SYSTEM_PACKAGES": _apt_install(inputs.system_packages),
        },
    )


def _apt_install(packages: Sequence[str]) -> str:
    """The final stage's package install, or nothing (the base image must be Debian-like)."""
    if not packages:
        return ""
    # Unpinned on purpose: BASE_IMAGE may be any Debian release, and the release's current
    # build (with its security fixes) is the one wanted.
    return (
        "# The code rewards' sandbox (docs/deploy.md: the container settings it needs).\n"
        "# hadolint ignore=DL3008\n"
        "RUN apt-get update \\\n"
        f"    && apt-get install -y --no-install-recommends {' '.join(sorted(packages))} \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
    )


def render_dockerignore() -> str:
    return read_template("dockerignore.in")


def render_compose(
    *,
    name: str,
    image: str,
    context: str,
    environment: Mapping[str, str],
    api_key_file: str | None,
    host_port: int = 8080,
    generator: str,
    usage: str,
) -> str:
    """docker-compose.yml: loopback port, read-only root, tmpfs /tmp, healthcheck, secrets."""
    env = dict(environment)
    service_secrets = ""
    secrets = ""
    if api_key_file is not None:
        env["RK_API_KEYS_FILE"] = API_KEYS_SECRET
        service_secrets = "    secrets:\n      - rk_api_keys\n"
        secrets = f"secrets:\n  rk_api_keys:\n    file: {api_key_file}\n"
    env_lines = "\n".join(f"      {key}: {json.dumps(value)}" for key, value in sorted(env.items()))
    return fill_template(
        read_template("compose.yml.in"),
        {
            "VERSION": __version__,
            "GENERATOR": generator,
            "USAGE": usage,
            "NAME": name,
            "CONTEXT": context,
            "IMAGE": image,
            "ENVIRONMENT": env_lines,
            "SERVICE_SECRETS": service_secrets,
            "HOST_PORT": str(host_port),
            "SECRETS": secrets,
        },
    )
