"""The public API is deliberate: __all__ lists exactly what is exported, and imports are cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import reward_kit
import reward_kit.sdk
import reward_kit.service


@pytest.mark.parametrize("module", [reward_kit, reward_kit.sdk, reward_kit.service])
def test_all_is_sorted_and_resolvable(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names, key=str.casefold) or names == sorted(names)
    for name in names:
        assert getattr(module, name) is not None, name


def test_public_names_are_exported() -> None:
    public = {n for n in vars(reward_kit) if not n.startswith("_")} - {
        "cli",
        "rewards",
        "sandbox",
        "sdk",
        "service",
        "deploy",
    }
    assert public <= set(reward_kit.__all__) | {"annotations"}


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        ("import reward_kit", "fastapi"),
        ("import reward_kit.sdk", "fastapi"),
        ("import reward_kit", "uvicorn"),
        ("import reward_kit.service", "fastapi"),
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
