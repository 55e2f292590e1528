"""Option merging for ``rk deploy``, in one place: flag > reward-kit.toml > environment > default.

The command line (named flags and ``-o KEY=VALUE``), the config file's tables and the
environment become :class:`Given` values; the target's options model resolves and validates
them (:meth:`TargetOptions.resolve`). ``name``, ``auth``, ``requirements`` and ``out`` are
the deploy's own settings, not a target's, and come from :class:`DeployDefaults`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .._errors import ConfigurationError
from ._config import DeployConfig
from ._names import AuthMode
from ._options import Given, Strings, TargetOptions, describe_error
from ._registry import option_names, options_model

__all__ = ["DeployDefaults", "ResolvedDeploy", "resolve_deploy"]


class DeployDefaults(BaseModel):
    """The deploy's settings a config file may give: flags (``--name``...) win over them."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    target: ClassVar[str] = "rk deploy"

    name: str | None = None
    auth: AuthMode | None = None
    requirements: Strings | None = None
    out: str | None = None


@dataclass(frozen=True, kw_only=True)
class ResolvedDeploy:
    """What the config file says about the deploy, and the target's validated options."""

    defaults: DeployDefaults
    options: TargetOptions


def resolve_deploy(
    target: str | None,
    *,
    flags: Mapping[str, Any] | None = None,
    overrides: Mapping[str, str] | None = None,
    config: DeployConfig | None = None,
    environ: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> ResolvedDeploy:
    """Resolve ``target``'s options from every source and validate them (``target`` None:
    the options every target takes, from ``[build]`` only; what ``rk build`` reads).

    ``flags`` are named options from the command line (None or an empty tuple: not given;
    text is parsed for the option, ``labels`` say how each was typed, e.g. ``--invoker``);
    ``overrides`` are ``-o KEY=VALUE`` pairs; ``config`` is the loaded config file.

    >>> resolve_deploy("local", overrides={"port": "9000"}).options.port
    9000
    """
    model = TargetOptions if target is None else options_model(target)
    command_line = _command_line(flags or {}, overrides or {}, labels or {})
    from_file = _applicable((config or DeployConfig()).given(target), model)
    spec_keys = DeployDefaults.model_fields.keys()
    defaults = _defaults({k: v for k, v in from_file.items() if k in spec_keys})
    from_file = {k: v for k, v in from_file.items() if k not in spec_keys}
    options = model.resolve(command_line, from_file, environ=environ)
    return ResolvedDeploy(defaults=defaults, options=options)


def _command_line(
    flags: Mapping[str, Any], overrides: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, Given]:
    given: dict[str, Given] = {}
    for key, value in flags.items():
        if value is None or value == ():
            continue
        label = labels.get(key, f"--{key.replace('_', '-')}")
        given[key] = Given(value, label, text=isinstance(value, str))
    for raw, text in overrides.items():
        key = raw.replace("-", "_")
        if key in given:
            raise ConfigurationError(
                f"{given[key].source} and -o {raw} both set {key}; give it once"
            )
        given[key] = Given(text, f"-o {raw}", text=True)
    return given


def _applicable(values: Mapping[str, Given], model: type[TargetOptions]) -> dict[str, Given]:
    """Drop ``[deploy]`` values meant for other targets (an option no target has stays, so
    the model names it as unknown)."""
    others = option_names()
    return {
        key: given
        for key, given in values.items()
        if key in model.model_fields
        or key in DeployDefaults.model_fields
        or key not in others
        or not given.source.endswith("[deploy]")
    }


def _defaults(values: Mapping[str, Given]) -> DeployDefaults:
    try:
        return DeployDefaults.model_validate({key: given.value for key, given in values.items()})
    except ValidationError as error:
        sources = {key: given.source for key, given in values.items()}
        raise ConfigurationError(describe_error(DeployDefaults, error, sources)) from None
