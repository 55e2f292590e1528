"""reward_kit.deploy stays small: short modules and functions (its imports are checked, for the
whole package, by tests/test_architecture.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ..conftest import ROOT

DEPLOY = sorted((ROOT / "reward_kit" / "deploy").rglob("*.py"))


@pytest.mark.parametrize("path", DEPLOY, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 300, path
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno < 70, (path, node.name)
