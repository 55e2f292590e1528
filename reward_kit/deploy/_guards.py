"""Deploy guards every target shares: no public evaluator by accident, no ignored security option.

They run in ``Target.check`` (before any cloud call) and again in ``plan`` and ``deploy``, so
code that drives a target directly is refused the same way the CLI is.

    >>> class Local:
    ...     name, public = "local", False
    >>> spec = DeploySpec(name="demo", sources=("r.py",), auth="none")
    >>> check_auth_options(spec, Local())
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from .._errors import ConfigurationError
from ._spec import DeploySpec

__all__ = ["PublicOrNot", "check_auth_options", "public_warning"]


class PublicOrNot(Protocol):
    """What the guards need of a target (``reward_kit.deploy.Target`` has both)."""

    name: ClassVar[str]
    public: ClassVar[bool]


def public_warning(target: str) -> str:
    return (
        f"WARNING: --allow-unauthenticated: {target} will run your reward functions for anyone "
        "on the internet who finds the URL, with no credential. They run your reward code, and "
        "you pay for every call."
    )


def check_auth_options(
    spec: DeploySpec, target: PublicOrNot, *, invokers: Sequence[str] = ()
) -> None:
    """Refuse a public unauthenticated deploy without consent, and invokers the mode ignores."""
    consent = spec.options.allow_unauthenticated
    if spec.auth == "none" and target.public and not consent:
        raise ConfigurationError(
            f"--auth none on {target.name} makes a public evaluator: anyone who finds the URL can "
            "run your reward code (even with --ingress internal, everything in the network can). "
            "Use --auth api-key (the default) or an IAM mode, or pass --allow-unauthenticated "
            "on the command line to confirm"
        )
    if consent and spec.auth != "none":
        raise ConfigurationError(
            f"--allow-unauthenticated only goes with --auth none (this deploy uses {spec.auth})"
        )
    if invokers and spec.auth not in ("google-iam", "aws-iam"):
        raise ConfigurationError(
            f"--invoker has no effect with --auth {spec.auth}: with api-key the key is the only "
            "gate and anyone with the URL reaches the app. Use --auth google-iam (gcp-cloud-run) "
            "or --auth aws-iam (aws-lambda) to say who may call, or drop --invoker"
        )
