"""The user's reward code and requirements, as they go into a build context or a bundle.

What is copied: for a file target (``rewards.py`` or ``rewards.py:fn``), the file's whole
folder of ``*.py`` files (not sub-folders), because the loader makes a file's folder
importable and reward files commonly import a sibling helper. For a module target
(``pkg.mod:fn``), the top-level package when it lives under the current folder; reward-kit's
own modules ship inside its wheel. Anything else must be installed through requirements.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .._errors import ConfigurationError
from .._loader import load_functions
from ._target import DeploySpec

__all__ = ["StagedSources", "gather_requirements", "stage_sources"]


@dataclass(frozen=True, kw_only=True)
class StagedSources:
    """Where the code went (relative to the stage dir) and the targets to serve from there."""

    folders: tuple[str, ...]
    targets: tuple[str, ...]


def _split_target(target: str) -> tuple[str, str]:
    path, sep, attr = target.rpartition(":")
    if sep and path.endswith(".py"):
        return path, ":" + attr
    return target, ""


def stage_sources(spec: DeploySpec, dest: Path, *, prefix: str = "src") -> StagedSources:
    """Copy the reward code of ``spec`` under ``dest/<prefix>[-N]``; return in-stage targets.

    >>> stage_sources(DeploySpec(name="m", sources=("rewards.py",)), Path("ctx/app")).targets
    ... # doctest: +SKIP
    ('src/rewards.py',)
    """
    file_folders: dict[Path, str] = {}
    targets: list[str] = []
    copied: list[str] = []
    for source in spec.sources:
        file_part, suffix = _split_target(source)
        if file_part.endswith(".py"):
            path = Path(file_part).expanduser().resolve()
            if not path.is_file():
                raise ConfigurationError(f"cannot build {source!r}: no such file {str(path)!r}")
            if path.parent not in file_folders:
                name = prefix if not file_folders else f"{prefix}-{len(file_folders) + 1}"
                file_folders[path.parent] = name
                _copy_py_folder(path.parent, dest / name)
                copied.append(name)
            targets.append(f"{file_folders[path.parent]}/{path.name}{suffix}")
        else:
            package = _local_package(source)
            if package is not None and package.name not in copied:
                if package.is_dir():
                    shutil.copytree(package, dest / package.name, ignore=_IGNORE)
                else:
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(package, dest / package.name)
                copied.append(package.name)
            targets.append(source)
    return StagedSources(folders=tuple(copied), targets=tuple(targets))


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def _copy_py_folder(folder: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.glob("*.py")):
        shutil.copyfile(path, dest / path.name)


def _local_package(target: str) -> Path | None:
    """The top-level package folder (or module file) of a module target in the user's code."""
    module = target.partition(":")[0]
    top = module.split(".")[0]
    if top == "reward_kit":
        return None
    cwd = Path(os.getcwd()).resolve()
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    origin = Path(found.origin).resolve() if found and found.origin else None
    if origin is None or not origin.is_relative_to(cwd):
        raise ConfigurationError(
            f"cannot build {target!r}: module {top!r} is not a reward file or a package under "
            f"the current folder; give a file target, or add it to --requirements"
        )
    return origin.parent if origin.name == "__init__.py" else origin


def gather_requirements(spec: DeploySpec) -> list[str]:
    """The decorators' ``requirements=`` plus ``spec.requirements``, first-seen order.

    Loading the targets also proves they import before anything is built or uploaded.
    """
    functions = load_functions(spec.sources)
    found: dict[str, None] = {}
    for name in sorted(functions):
        for requirement in functions[name].requirements:
            found.setdefault(requirement.strip(), None)
    for requirement in spec.requirements:
        line = requirement.strip()
        if line and not line.startswith("#"):
            found.setdefault(line, None)
    return list(found)
