"""The user's reward code and requirements, as they go into a build context or a bundle.

What is copied by default: for a file target (``rewards.py`` or ``rewards.py:fn``), the file's
whole folder of ``*.py`` files (not sub-folders), because the loader makes a file's folder
importable and reward files commonly import a sibling helper. For a module target
(``pkg.mod:fn``), the top-level package when it lives under the current folder (every file
but caches and dotfiles); reward-kit's own modules ship inside its wheel. Anything else must
be installed through requirements.

With an explicit ``include`` list (``--include PATH``, or ``[build] include`` in the config),
a file target brings only itself and a package only its ``*.py`` files, plus exactly the
listed files. Either way :class:`StagedSources` lists every file, so the build can show it.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._errors import ConfigurationError
from ..._function import RewardFunction
from ..._loader import load_functions
from .._spec import DeploySpec

__all__ = ["StagedSources", "expand_includes", "gather_requirements", "stage_sources"]


@dataclass(frozen=True, kw_only=True)
class StagedSources:
    """Where the code went (relative to the stage dir), the targets to serve from there, and
    every file copied as ``(path in the stage, path on this machine)``, sorted."""

    folders: tuple[str, ...]
    targets: tuple[str, ...]
    files: tuple[tuple[str, Path], ...] = ()


def _split_target(target: str) -> tuple[str, str]:
    path, sep, attr = target.rpartition(":")
    if sep and path.endswith(".py"):
        return path, ":" + attr
    return target, ""


def stage_sources(
    spec: DeploySpec, dest: Path, *, prefix: str = "src", include: Sequence[str] | None = None
) -> StagedSources:
    """Copy the reward code of ``spec`` under ``dest/<prefix>[-N]``; return in-stage targets.

    ``include`` (paths, folders or globs, relative to the current folder) replaces the default
    choice of files with exactly those, next to the targets themselves.

    >>> stage_sources(DeploySpec(name="m", sources=("rewards.py",)), Path("ctx/app")).targets
    ... # doctest: +SKIP
    ('src/rewards.py',)
    """
    explicit = expand_includes(include) if include is not None else None
    roots: dict[Path, str] = {}  # a target's folder or package dir -> its name in the stage
    chosen: dict[Path, Path] = {}  # file on this machine -> its path in the stage
    targets: list[str] = []
    for source in spec.sources:
        file_part, suffix = _split_target(source)
        if file_part.endswith(".py"):
            path = _file_target(
                source, file_part, roots, chosen, prefix, everything=explicit is None
            )
            targets.append(f"{roots[path.parent]}/{path.name}{suffix}")
        else:
            _package_target(source, roots, chosen, python_only=explicit is not None)
            targets.append(source)
    for path in explicit or ():
        _included(path, roots, chosen)
    for origin, staged in chosen.items():
        (dest / staged).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, dest / staged)
    listing = tuple(sorted((staged.as_posix(), origin) for origin, staged in chosen.items()))
    folders = tuple(dict.fromkeys(roots.values()))
    return StagedSources(folders=folders, targets=tuple(targets), files=listing)


def _file_target(
    source: str, file_part: str, roots: dict[Path, str], chosen: dict[Path, Path],
    prefix: str, *, everything: bool,
) -> Path:  # fmt: skip
    """Choose a reward file (and, by default, every ``*.py`` next to it); returns its path."""
    path = Path(file_part).expanduser().resolve()
    if not path.is_file():
        raise ConfigurationError(f"cannot build {source!r}: no such file {str(path)!r}")
    if path.parent not in roots:
        roots[path.parent] = prefix if not roots else f"{prefix}-{len(roots) + 1}"
        if everything:
            _choose(chosen, path.parent, roots[path.parent], sorted(path.parent.glob("*.py")))
    _choose(chosen, path.parent, roots[path.parent], [path])
    return path


def _package_target(
    source: str, roots: dict[Path, str], chosen: dict[Path, Path], *, python_only: bool
) -> None:
    """Choose a module target's top-level package, when it lives under the current folder."""
    package = _local_package(source)
    if package is None or package in roots:
        return
    roots[package] = package.name
    files = _package_files(package, python_only=python_only)
    if package.is_dir():
        _choose(chosen, package, package.name, files)
    else:  # a single-module "package": the file itself, at the top
        _choose(chosen, package.parent, "", files)


def _included(path: Path, roots: dict[Path, str], chosen: dict[Path, Path]) -> None:
    """Choose an ``--include`` file, at its place in the innermost staged folder holding it."""
    holders = [r for r in roots if r.is_dir() and path.is_relative_to(r)]
    root = max(holders, key=lambda r: len(r.parts), default=None)
    if root is None:
        raise ConfigurationError(
            f"--include {path}: not inside the folder of a reward file or a staged package "
            f"({', '.join(str(r) for r in roots) or 'none'}); included files keep their place "
            "next to the code that reads them"
        )
    _choose(chosen, root, roots[root], [path])


def _choose(chosen: dict[Path, Path], root: Path, name: str, paths: Iterable[Path]) -> None:
    for path in paths:
        chosen.setdefault(path, Path(name) / path.relative_to(root))


def _package_files(package: Path, *, python_only: bool) -> list[Path]:
    """A package's files (a single-module package is just that file), caches and dotfiles out."""
    if package.is_file():
        return [package]
    found = []
    for path in sorted(package.rglob("*")):
        parts = path.relative_to(package).parts
        if not path.is_file() or any(p == "__pycache__" or p.startswith(".") for p in parts):
            continue
        if path.suffix in (".pyc", ".pyo") or (python_only and path.suffix != ".py"):
            continue
        found.append(path)
    return found


def expand_includes(include: Iterable[str]) -> list[Path]:
    """Files named by ``include``: files, folders (recursively, caches and dotfiles out) and
    globs (``**`` allowed); each entry must match something."""
    found: dict[Path, None] = {}
    for entry in include:
        matches = sorted(glob.glob(os.path.expanduser(entry), recursive=True))
        if not matches:
            raise ConfigurationError(f"--include {entry}: no such file, folder or match")
        for match in matches:
            path = Path(match).resolve()
            for file in _package_files(path, python_only=False) if path.is_dir() else [path]:
                found.setdefault(file, None)
    return list(found)


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


def gather_requirements(
    spec: DeploySpec, functions: Mapping[str, RewardFunction[Any]] | None = None
) -> list[str]:
    """The decorators' ``requirements=`` plus ``spec.requirements``, first-seen order.

    Loading the targets (unless ``functions`` are given, already loaded) also proves they
    import before anything is built or uploaded.
    """
    if functions is None:
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
