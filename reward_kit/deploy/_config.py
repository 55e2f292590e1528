"""Per-target deploy defaults from ``reward-kit.toml`` or ``[tool.reward-kit]`` in pyproject.toml.

The file holds defaults such as project, region, memory and concurrency; flags win over it.
It never holds secrets: a key that looks like one is refused, so nobody is tempted.

    # reward-kit.toml
    [deploy]                 # applies to every target
    auth = "api-key"
    [deploy.gcp-cloud-run]
    project = "my-project"
    region = "europe-west1"
    max_instances = 5
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError

__all__ = ["CONFIG_FILE", "load_config", "merge_options"]

CONFIG_FILE = "reward-kit.toml"
# Fragments of option names that would hold key material; such options are refused.
_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "private_key", "credential")


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


def load_config(
    target: str, *, path: Path | None = None, start: Path | None = None
) -> dict[str, Any]:
    """Defaults for ``target``: the ``[deploy]`` table overlaid with ``[deploy.TARGET]``.

    ``path`` names the file; otherwise the nearest one above ``start`` (default: cwd) is used,
    and no file at all means no defaults.

    >>> load_config("aws-lambda", start=Path("/"))
    {}
    """
    if path is not None:
        if not path.is_file():
            raise ConfigurationError(f"config file {path} does not exist")
        document = _toml_load(path)
        if path.name == "pyproject.toml":
            document = document.get("tool", {}).get("reward-kit", {})
        found: tuple[Path, dict[str, Any]] | None = (path, document)
    else:
        found = _find((start or Path.cwd()).resolve())
    if found is None:
        return {}
    origin, document = found
    deploy = document.get("deploy", {})
    if not isinstance(deploy, dict):
        raise ConfigurationError(f"{origin}: 'deploy' must be a table")
    common = {k: v for k, v in deploy.items() if not isinstance(v, dict)}
    specific = deploy.get(target, {})
    if not isinstance(specific, dict):
        raise ConfigurationError(f"{origin}: 'deploy.{target}' must be a table")
    merged = {**common, **specific}
    for key in merged:
        if any(word in key.lower().replace("-", "_") for word in _SECRET_WORDS):
            raise ConfigurationError(
                f"{origin}: '{key}' looks like a secret; secrets never go in the config file "
                "(rk deploy makes the API key and keeps it in the cloud's secret store)"
            )
    return {key.replace("-", "_"): value for key, value in merged.items()}


def merge_options(config: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Flags that were given (not None, not empty) win over config defaults.

    >>> merge_options({"region": "eu", "memory": "1Gi"}, {"region": "us", "memory": None})
    {'region': 'us', 'memory': '1Gi'}
    """
    merged = dict(config)
    for key, value in flags.items():
        if value is not None and value != ():
            merged[key] = list(value) if isinstance(value, tuple) else value
    return merged
