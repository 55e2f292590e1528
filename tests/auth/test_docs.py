"""docs/auth.md stays honest: every Python example compiles, names nothing undefined, imports
only what exists, and every ``rk`` command line uses flags the CLI has."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reward_kit.cli import cli
from tests.conftest import ROOT

DOC = ROOT / "docs" / "auth.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def test_python_examples_compile_and_resolve(tmp_path: Path) -> None:
    found = blocks("python")
    assert len(found) >= 6, "an example per mode, plus the profile one"
    files = []
    for number, code in enumerate(found):
        path = tmp_path / f"auth_md_block_{number}.py"
        path.write_text(code)
        compile(code, str(path), "exec")
        files.append(str(path))
        # The imports are real: each imported name exists (imports are cheap and offline).
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                exec(compile(ast.Module([node], []), str(path), "exec"), {})
    # pyflakes' rules (undefined and unused names, ...) through ruff, ignoring project config.
    ruff = Path(sys.executable).parent / "ruff"
    command = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    result = subprocess.run(
        [*command, "check", "--isolated", "--no-cache", "--select", "F,E9", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def rk_commands() -> list[list[str]]:
    commands = []
    for block in blocks("console"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("$ rk "):
                commands.append(shlex.split(line[2:].split("#")[0])[1:])
    return commands


@pytest.mark.parametrize("argv", rk_commands(), ids=lambda argv: " ".join(argv[:2]))
def test_rk_command_lines_use_real_flags(argv: list[str]) -> None:
    words = [a for a in argv if not a.startswith("-")]
    # The command path: leading words naming (sub)commands, e.g. "keys generate", "deploy".
    path: list[str] = []
    group = cli
    for word in words:
        sub = getattr(group, "commands", {}).get(word)
        if sub is None:
            break
        path.append(word)
        group = sub
    assert path, argv
    if "up" in getattr(group, "commands", {}):  # `rk deploy SOURCE...` is `rk deploy up`
        path.append("up")
    helped = CliRunner().invoke(cli, [*path, "--help"], terminal_width=200)
    assert helped.exit_code == 0, helped.output
    for flag in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert re.search(rf"(^|[\s,/]){re.escape(flag)}\b", helped.output), (flag, path)
