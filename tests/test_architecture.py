"""The package's structure stays as docs say: no module reaches into another package's private
modules. (The layers themselves are import-linter contracts in pyproject.toml, run by
``make lint``.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reward_kit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every ``from X import`` and ``import X`` in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def _owner(module: str) -> str:
    """The package whose private module ``module`` is (``reward_kit.engine`` for
    ``reward_kit.engine._pool``), or "" when it names no private module."""
    parts = module.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return ""


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_packages_private_module(path: Path) -> None:
    importer = _module_name(path)
    wrong = []
    for line, module in _imported(path):
        owner = _owner(module)
        if not owner.startswith("reward_kit"):
            continue
        # A package's own private modules, and the core's (reward_kit._x), are fair game.
        if owner == "reward_kit" or importer == owner or importer.startswith(owner + "."):
            continue
        wrong.append(f"line {line}: {module} (private to {owner})")
    assert not wrong, f"{_module_name(path)} imports private modules: {wrong}"


TESTS = Path(__file__).resolve().parent


TEST_SOURCES = sorted(p for p in TESTS.rglob("*.py") if "fixtures" not in p.parts)


@pytest.mark.parametrize("path", TEST_SOURCES, ids=lambda p: str(p.relative_to(TESTS)))
def test_tests_import_helpers_not_other_test_modules(path: Path) -> None:
    """Shared fixtures and fakes live in conftest.py or ``_name.py`` modules: importing a
    ``test_*`` module runs (or re-collects) its tests and hides where the helper lives."""
    imported = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module.rsplit(".", 1)[-1])
        elif isinstance(node, ast.Import):
            imported += [alias.name.rsplit(".", 1)[-1] for alias in node.names]
    assert not [name for name in imported if name.startswith("test_")]
