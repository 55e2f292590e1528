"""Loading reward functions from targets: file.py, file.py:fn, pkg.mod:fn or pkg.mod.fn."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from ._errors import LoadError
from ._function import RewardFunction

__all__ = ["is_environment", "load_functions", "load_module", "load_target", "resolve_source"]


def load_functions(
    targets: Iterable[str], *, allow_none: bool = False
) -> dict[str, RewardFunction[Any]]:
    """Load every target and address the functions by name; a duplicate name is an error.
    ``allow_none``: finding no function is fine (the targets serve environments only).

    >>> fns = load_functions(["examples/quickstart/rewards.py"])  # doctest: +SKIP
    >>> sorted(fns)  # doctest: +SKIP
    ['exact_match', 'format_check', 'length_score']
    """
    found: dict[str, RewardFunction[Any]] = {}
    origin: dict[str, str] = {}
    for target in targets:
        for fn in load_target(target):
            existing = found.get(fn.name)
            if existing is fn:
                continue
            if existing is not None:
                raise LoadError(
                    f"two reward functions are named {fn.name!r} (from {origin[fn.name]!r} and "
                    f"{target!r}); rename one with @reward_function(name=...)"
                )
            found[fn.name] = fn
            origin[fn.name] = target
    if not found and not allow_none:
        raise LoadError("no reward functions to serve: give at least one target")
    return found


def is_environment(value: Any) -> bool:
    """Whether ``value`` is a ``reward_kit.env.Environment`` subclass (checked by its marker:
    the core does not import the env package)."""
    return isinstance(value, type) and bool(getattr(value, "__rk_environment__", False))


def load_module(target: str) -> tuple[ModuleType, str | None]:
    """The module a target is in, and the attribute it names (None: the whole module)."""
    path_part, sep, attr = target.rpartition(":")
    if sep and _looks_like_file(path_part):
        return _load_file(path_part, target)[0], attr
    if _looks_like_file(target):
        return _load_file(target, target)[0], None
    if sep:
        return _import_module(path_part, target), attr
    module_name, _, attr = target.rpartition(".")
    if module_name and not _is_module(target, target):
        return _import_module(module_name, target), attr
    return _import_module(target, target), None


def load_target(target: str) -> list[RewardFunction[Any]]:
    """The functions one target names: all decorated ones in a file/module, or a single one
    (none when it names an environment class, or a module that only defines environments)."""
    path_part, sep, attr = target.rpartition(":")
    if sep and _looks_like_file(path_part):
        module, path = _load_file(path_part, target)
        return _attribute(module, attr, target, f"{path}:{attr}")
    if _looks_like_file(target):
        module, path = _load_file(target, target)
        return _collect(module, target, lambda name: f"{path}:{name}")
    if sep:
        module = _import_module(path_part, target)
        return _attribute(module, attr, target, f"{path_part}:{attr}")
    module_name, _, attr = target.rpartition(".")
    if module_name and not _is_module(target, target):
        module = _import_module(module_name, target)
        return _attribute(module, attr, target, f"{module_name}:{attr}")
    module = _import_module(target, target)
    return _collect(module, target, lambda name: f"{target}:{name}")


def resolve_source(source: str) -> RewardFunction[Any]:
    """Resolve the ``source`` spec of one function (how worker processes find it)."""
    functions = load_target(source)
    return functions[0]


def _looks_like_file(text: str) -> bool:
    return text.endswith(".py") or (("/" in text or "\\" in text) and Path(text).is_file())


def _is_module(name: str, target: str) -> bool:
    """Whether ``name`` is a module (else ``pkg.mod.fn`` names an attribute of ``pkg.mod``).

    ``find_spec`` imports the parent package to answer, so the parent's own import errors
    surface here: report them like every other failed import (file, line, exception).
    """
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        # No such parent (or a parent without a spec): the caller's import says why.
        return False
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        raise LoadError(_describe_failure(target, error, None)) from error


def _load_file(file: str, target: str) -> tuple[ModuleType, str]:
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        raise LoadError(f"cannot load {target!r}: no such file {str(path)!r}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"_rk_target_{_identifier(path.stem)}_{digest}"
    module = sys.modules.get(module_name)
    if module is not None:
        return module, str(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot load {target!r}: {str(path)!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    # Like `python file.py`: the file's folder is importable, so it can import its siblings.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        del sys.modules[module_name]
        if isinstance(error, KeyboardInterrupt):
            raise
        raise LoadError(_describe_failure(target, error, str(path))) from error
    return module, str(path)


def _import_module(name: str, target: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):
            raise LoadError(
                f"cannot load {target!r}: no module named {error.name!r} "
                "(is it installed, or is the current folder on PYTHONPATH?)"
            ) from error
        raise LoadError(_describe_failure(target, error, None)) from error
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        raise LoadError(_describe_failure(target, error, None)) from error


def _describe_failure(target: str, error: BaseException, file: str | None) -> str:
    """Where the import failed (file:line) and with what exception."""
    where = ""
    if isinstance(error, SyntaxError) and error.filename:
        where = f"{error.filename}:{error.lineno}"
    else:
        frames = [
            f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith("<")
        ]
        own = [f for f in frames if file is not None and f.filename == file]
        if own or frames:
            frame = (own or frames)[-1]
            where = f"{frame.filename}:{frame.lineno}"
    location = f" at {where}" if where else ""
    detail = error.msg if isinstance(error, SyntaxError) else str(error)
    return f"cannot load {target!r}: {type(error).__name__}{location}: {detail}"


def _attribute(
    module: ModuleType, attr: str, target: str, source: str
) -> list[RewardFunction[Any]]:
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            available = ", ".join(_function_names(module)) or "none"
            raise LoadError(
                f"cannot load {target!r}: there is no {attr!r} in it "
                f"(reward functions in it: {available})"
            )
        value = getattr(value, part)
    if is_environment(value):
        return []
    if isinstance(value, RewardFunction):
        fn = value
    elif callable(value):
        try:
            fn = RewardFunction(value)
        except (TypeError, ValueError) as error:
            raise LoadError(f"cannot load {target!r}: {error}") from error
    else:
        raise LoadError(
            f"cannot load {target!r}: {attr!r} is a {type(value).__name__}, not a function"
        )
    _claim(fn, source)
    return [fn]


def _claim(fn: RewardFunction[Any], source: str) -> None:
    """Record how a worker finds ``fn``. A built-in keeps its own import spec: it is one shared
    object, and a target that merely imports it must not rewrite it for everyone else."""
    if fn.source is None or not fn.source.startswith("reward_kit."):
        fn.source = source


def _collect(module: ModuleType, target: str, source_of: Any) -> list[RewardFunction[Any]]:
    functions: list[RewardFunction[Any]] = []
    seen: set[int] = set()
    for attr, value in vars(module).items():
        if isinstance(value, RewardFunction) and id(value) not in seen:
            seen.add(id(value))
            _claim(value, source_of(attr))
            functions.append(value)
    if not functions and not any(is_environment(v) for v in vars(module).values()):
        raise LoadError(f"no @reward_function found in {target!r}")
    return functions


def _function_names(module: ModuleType) -> list[str]:
    names = [v.name for v in vars(module).values() if isinstance(v, RewardFunction)]
    return list(dict.fromkeys(names))


def _identifier(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)
