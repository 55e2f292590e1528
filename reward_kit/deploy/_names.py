"""The names ``rk deploy`` and ``rk build`` offer on the command line, kept import-light."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from .._vocabulary import AUTH_MODES as SERVER_AUTH_MODES
from .._vocabulary import AuthMode as ServerAuthMode

__all__ = ["AUTH_MODES", "TARGET_NAMES", "ArtifactKind", "AuthMode"]

# The server's auth modes (reward_kit._vocabulary), and "none": a public deploy, refused
# unless --allow-unauthenticated says so.
AuthMode = Literal[ServerAuthMode, "none"]
AUTH_MODES: tuple[str, ...] = (*SERVER_AUTH_MODES, "none")
# The registry (reward_kit.deploy._registry) holds a target of each name; a test checks both.
TARGET_NAMES: tuple[str, ...] = ("local", "gcp-cloud-run", "aws-lambda")


class ArtifactKind(str, Enum):
    """What a target deploys; the values are ``rk build --format``'s names.

    >>> ArtifactKind("lambda-zip").runs_sandbox
    False
    """

    DOCKER = "docker"
    LAMBDA_ZIP = "lambda-zip"
    KUBERNETES = "kubernetes"

    @property
    def runs_sandbox(self) -> bool:
        """Whether the code rewards' sandbox (bubblewrap) can run where this artifact runs.

        Lambda has no bubblewrap and allows no user namespaces. Kubernetes can, once the
        Deployment is patched out of the restricted profile (``rk build`` says how).
        """
        return self is not ArtifactKind.LAMBDA_ZIP
