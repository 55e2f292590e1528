"""Finding the environments that ``rk-serve``'s targets define, next to reward functions."""

from __future__ import annotations

from collections.abc import Iterable

from .._errors import LoadError
from .._loader import is_environment, load_module
from ._authoring import Environment

__all__ = ["find_environments"]


def find_environments(targets: Iterable[str]) -> dict[str, type[Environment]]:
    """The :class:`Environment` subclasses in ``targets`` (a file or module: all it holds; a
    ``file.py:Name`` target: that class), by ``name``; two with one name is an error."""
    found: dict[str, type[Environment]] = {}
    for target in dict.fromkeys(targets):
        module, attr = load_module(target)
        if attr is not None:
            value = getattr(module, attr.split(".")[0], None)
            candidates = [value] if is_environment(value) else []
        else:
            candidates = [v for v in vars(module).values() if is_environment(v)]
        for cls in candidates:
            if not isinstance(cls, type) or cls is Environment or not issubclass(cls, Environment):
                continue
            existing = found.get(cls.name)
            if existing is not None and existing is not cls:
                raise LoadError(
                    f"two environments are named {cls.name!r} ({existing.__qualname__} and "
                    f"{cls.__qualname__}); set a different `name` on one"
                )
            found[cls.name] = cls
    return found
