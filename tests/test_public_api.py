"""The public API is deliberate: __all__ lists exactly what is exported, and imports are cheap."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import reward_kit
import reward_kit.agent.models
import reward_kit.models
import reward_kit.sdk
import reward_kit.service
import reward_kit.typed_interface

# Upstream reward-kit 0.4's module paths (docs/compat.md). reward_kit.reward_function is the
# decorator on the package, as upstream had it; the module is reached through sys.modules.
UPSTREAM_PATHS = [
    reward_kit.models,
    reward_kit.typed_interface,
    importlib.import_module("reward_kit.reward_function"),
    reward_kit.agent.models,
]


def public_modules() -> list[str]:
    """Every module and package of reward_kit whose dotted name has no ``_`` part."""
    found = ["reward_kit"]
    for info in pkgutil.walk_packages(reward_kit.__path__, "reward_kit."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append(info.name)
    return sorted(found)


PUBLIC_MODULES = public_modules()


def test_every_public_namespace_is_covered() -> None:
    # Guards the walk itself: a namespace that disappears from it goes unchecked.
    for name in ("reward_kit.engine", "reward_kit.sdk", "reward_kit.service", "reward_kit.deploy"):
        assert name in PUBLIC_MODULES


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    names = module.__all__
    assert names == sorted(names, key=str.casefold) or names == sorted(names)
    for exported in names:
        assert getattr(module, exported) is not None, exported


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_what_a_module_defines_is_exported(name: str) -> None:
    """A public function or class defined in a public module is in its ``__all__``."""
    module = importlib.import_module(name)
    defined = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == name
    }
    assert defined <= set(module.__all__), sorted(defined - set(module.__all__))


@pytest.mark.parametrize("module", UPSTREAM_PATHS)
def test_upstream_paths_export_what_they_list(module: object) -> None:
    for exported in module.__all__:  # type: ignore[attr-defined]
        assert getattr(module, exported) is not None, exported


def test_public_names_are_exported() -> None:
    public = {n for n in vars(reward_kit) if not n.startswith("_")} - {
        "cli",
        "rewards",
        "sandbox",
        "sdk",
        "service",
        "deploy",
        "engine",
        "env",
        "view",
        "agent",
        "models",
        "typed_interface",
    }
    assert public <= set(reward_kit.__all__) | {"annotations"}


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        ("import reward_kit", "fastapi"),
        ("import reward_kit.sdk", "fastapi"),
        ("import reward_kit", "uvicorn"),
        ("import reward_kit.service", "fastapi"),
        ("import reward_kit.engine", "fastapi"),
        ("import reward_kit.engine", "starlette"),
        ("import reward_kit.engine", "uvicorn"),
        # reward_kit.run(...) is cheap to reach: the client and the engine load when a run starts.
        ("import reward_kit.run", "aiohttp"),
        ("import reward_kit.run", "reward_kit.engine"),
        ("import reward_kit", "reward_kit.run"),
    ],
)
def test_imports_stay_thin(statement: str, forbidden: str) -> None:
    code = f"import sys; {statement}; print({forbidden!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_extra_names_the_pip_command() -> None:
    from reward_kit._extras import require

    with pytest.raises(reward_kit.MissingDependency, match=r"pip install 'reward-kit\[server\]'"):
        require("surely_not_installed_pkg", extra="server", feature="rk serve")


def test_the_engine_names_moved_with_a_warning() -> None:
    import reward_kit.engine

    with pytest.deprecated_call(match="moved to reward_kit.engine.Engine"):
        moved = reward_kit.service.Engine
    assert moved is reward_kit.engine.Engine
