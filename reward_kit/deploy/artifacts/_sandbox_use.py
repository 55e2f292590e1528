"""Does an evaluator need the code rewards' sandbox (bubblewrap) in its image?

Yes when a target is, or reaches, ``code_execution_reward``, ``humaneval_reward`` or
``reward_kit.sandbox``: the function itself, what its code names (globals, attributes,
closures), and the user's own helpers it calls, transitively. Third-party and standard-library
code is not followed. A false "yes" costs a small package in the image; for a "no" the build
option ``sandbox`` (``rk build --sandbox``) says otherwise.
"""

from __future__ import annotations

import inspect
import sys
import sysconfig
import types
from collections.abc import Iterator, Mapping
from typing import Any

from ..._function import RewardFunction

__all__ = ["SANDBOX_PACKAGES", "uses_sandbox"]

# What the image installs for it (Debian package names).
SANDBOX_PACKAGES = ("bubblewrap",)
_MODULES = ("reward_kit.sandbox", "reward_kit.rewards.code")
_NAMES = frozenset(
    {"code_execution_reward", "humaneval_reward", "Sandbox", "run_python_tests", "sandbox"}
)
_MAX_VISITS = 2000


def uses_sandbox(functions: Mapping[str, RewardFunction[Any]]) -> bool:
    """Whether any of ``functions`` runs model code in the sandbox.

    >>> from reward_kit.rewards import code_execution_reward, format_reward
    >>> uses_sandbox({"c": code_execution_reward}), uses_sandbox({"f": format_reward})
    (True, False)
    """
    return any(_reaches(function.func) for function in functions.values())


def _reaches(start: Any) -> bool:
    seen: set[int] = set()
    todo = [start]
    while todo and len(seen) < _MAX_VISITS:
        value = todo.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, RewardFunction):
            todo.append(value.func)
            continue
        if isinstance(value, (list, tuple, set, frozenset)):  # e.g. combine()'s parts
            todo += list(value)
            continue
        if isinstance(value, dict):
            todo += list(value.values())
            continue
        if isinstance(value, types.ModuleType):
            if value.__name__.startswith(_MODULES):
                return True
            continue
        if not callable(value):
            continue
        if str(getattr(value, "__module__", "") or "").startswith(_MODULES):
            return True
        function = inspect.unwrap(value) if inspect.isfunction(value) else None
        code = getattr(function, "__code__", None)
        if function is None or code is None:
            continue
        names = set(_names(code))
        if names & _NAMES:
            return True
        todo += [cell.cell_contents for cell in function.__closure__ or () if _filled(cell)]
        if _is_user_code(code.co_filename):
            scope = function.__globals__
            todo += [scope[name] for name in names if name in scope]
    return False


def _names(code: types.CodeType) -> Iterator[str]:
    """Every global and attribute name ``code`` and its nested functions use."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names(constant)


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _is_user_code(filename: str) -> bool:
    """Not the standard library, not installed packages, not reward-kit itself."""
    if filename.startswith("<"):
        return False
    paths = sysconfig.get_paths()
    installed = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    installed |= {sys.prefix, sys.base_prefix}
    reward_kit = str(__file__).rsplit("/deploy/", 1)[0]
    return not any(filename.startswith(p) for p in (*installed, reward_kit) if p)
