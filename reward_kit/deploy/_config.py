"""``reward-kit.toml`` (or ``[tool.reward-kit]`` in pyproject.toml): deploy and build defaults.

The file holds defaults such as project, region, memory and concurrency; flags win over it.
Its values are validated by the target's options model, strictly: TOML has booleans and
integers, so ``rotate_key = "false"`` is an error rather than a true string. It never holds
secrets: a key that looks like one is refused, so nobody is tempted. Nor can it make an
evaluator public: ``allow_unauthenticated`` is a command-line flag only.

    # reward-kit.toml
    [build]                  # rk build and rk deploy
    include = ["rewards.py", "helpers/"]   # relative to this file
    [deploy]                 # applies to every target that takes the option
    auth = "api-key"
    [deploy.gcp-cloud-run]
    project = "my-project"
    region = "europe-west1"
    max_instances = 5
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from ._options import Given

__all__ = ["CONFIG_FILE", "DeployConfig", "load_config"]

CONFIG_FILE = "reward-kit.toml"
# Fragments of option names that would hold key material; such options are refused.
_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "private_key", "credential")
# Options only a flag typed on the command line may set: a config file committed to a
# repository must not make an evaluator public by itself.
_FLAG_ONLY = ("allow_unauthenticated",)
_BUILD_KEYS = ("include", "sandbox")


@dataclass(frozen=True, kw_only=True)
class DeployConfig:
    """The file's ``[build]``, ``[deploy]`` and ``[deploy.TARGET]`` tables, names normalised
    (``max-instances`` is ``max_instances``); not validated yet: that is the target's model.

    >>> DeployConfig(common={"region": "eu"}, targets={"local": {"port": 9}}).table("local")
    {'region': 'eu', 'port': 9}
    """

    origin: Path | None = None
    build: Mapping[str, Any] = field(default_factory=dict)
    common: Mapping[str, Any] = field(default_factory=dict)
    targets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def table(self, target: str) -> dict[str, Any]:
        """``[deploy]`` overlaid with ``[deploy.TARGET]``."""
        return {**self.common, **self.targets.get(target, {})}

    def given(self, target: str | None) -> dict[str, Given]:
        """Every value for ``target`` (None: ``[build]`` only), each with where it was set:
        ``[deploy.TARGET]`` wins over ``[deploy]``, which wins over ``[build]``."""
        where = str(self.origin or CONFIG_FILE)
        tables = [("build", self.build)]
        if target is not None:
            tables += [("deploy", self.common), (f"deploy.{target}", self.targets.get(target, {}))]
        values: dict[str, Given] = {}
        for name, table in tables:
            values |= {key: Given(value, f"{where} [{name}]") for key, value in table.items()}
        return values


def _toml_load(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        try:
            import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
        except ImportError as error:
            raise ConfigurationError(
                f"reading {path.name} on Python 3.10 needs tomli: pip install tomli"
            ) from error
    try:
        with path.open("rb") as handle:
            document: dict[str, Any] = tomllib.load(handle)
            return document
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path} is not valid TOML: {error}") from None


def _find(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The nearest reward-kit.toml, or pyproject.toml with [tool.reward-kit], from ``start`` up."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate, _toml_load(candidate)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            section = _toml_load(pyproject).get("tool", {}).get("reward-kit")
            if isinstance(section, dict):
                return pyproject, section
    return None


def _document(path: Path | None, start: Path | None) -> tuple[Path, dict[str, Any]] | None:
    if path is None:
        return _find((start or Path.cwd()).resolve())
    if not path.is_file():
        raise ConfigurationError(f"config file {path} does not exist")
    document = _toml_load(path)
    if path.name == "pyproject.toml":
        document = document.get("tool", {}).get("reward-kit", {})
    return path, document


def load_config(*, path: Path | None = None, start: Path | None = None) -> DeployConfig:
    """The config file ``path``, or the nearest one above ``start`` (default: the current
    folder); no file at all is an empty config.

    >>> load_config(start=Path("/"))
    DeployConfig(origin=None, build={}, common={}, targets={})
    """
    found = _document(path, start)
    if found is None:
        return DeployConfig()
    origin, document = found
    deploy = _table(document, "deploy", origin)
    targets = {}
    for name, table in deploy.items():
        if isinstance(table, dict):
            targets[name] = _checked(table, origin, f"deploy.{name}")
    common = _checked(
        {k: v for k, v in deploy.items() if not isinstance(v, dict)}, origin, "deploy"
    )
    build = _build(_table(document, "build", origin), origin)
    return DeployConfig(origin=origin, build=build, common=common, targets=targets)


def _table(document: Mapping[str, Any], name: str, origin: Path) -> dict[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{origin}: '{name}' must be a table")
    return table


def _checked(table: Mapping[str, Any], origin: Path, name: str) -> dict[str, Any]:
    """The table with option names normalised; secrets and flag-only options refused."""
    for key in table:
        normal = key.lower().replace("-", "_")
        if any(word in normal for word in _SECRET_WORDS):
            raise ConfigurationError(
                f"{origin}: '{key}' in [{name}] looks like a secret; secrets never go in the "
                "config file (rk deploy makes the API key and keeps it in the cloud's secret store)"
            )
        if normal in _FLAG_ONLY:
            raise ConfigurationError(
                f"{origin}: '{key}' cannot be set in a config file; a public evaluator takes "
                "--allow-unauthenticated on the command line"
            )
    return {key.replace("-", "_"): value for key, value in table.items()}


def _build(table: Mapping[str, Any], origin: Path) -> dict[str, Any]:
    """``[build]``: ``include`` (made absolute, relative to the file) and ``sandbox``."""
    build = _checked(table, origin, "build")
    unknown = sorted(set(build) - set(_BUILD_KEYS))
    if unknown:
        raise ConfigurationError(
            f"{origin}: unknown [build] option {unknown[0]!r}; known: {', '.join(_BUILD_KEYS)}"
        )
    include = build.get("include")
    if include is not None:
        if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
            raise ConfigurationError(f"{origin}: [build] include must be a list of paths")
        build["include"] = [str(origin.parent / item) for item in include]
    return build
