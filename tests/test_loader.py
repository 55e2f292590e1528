"""Loading targets: every form, and clear errors that say where and why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reward_kit import LoadError, RewardFunction, load_functions
from reward_kit._loader import load_target, resolve_source

LOADER = Path(__file__).parent / "fixtures" / "loader"
GOOD = str(LOADER / "good.py")


@pytest.fixture
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(LOADER.parent))


def test_file_target_loads_every_decorated_function_once() -> None:
    functions = load_functions([GOOD])
    assert list(functions) == ["alpha", "beta-renamed"]  # `alias` is the same object as alpha


def test_file_colon_function_and_plain_callables() -> None:
    (fn,) = load_target(f"{GOOD}:plain")
    assert isinstance(fn, RewardFunction)
    assert fn.name == "plain"
    assert fn([{"role": "assistant", "content": "x"}]).score == 0.25


@pytest.mark.usefixtures("importable")
@pytest.mark.parametrize("target", ["loader.good:alpha", "loader.good.alpha"])
def test_module_forms(target: str) -> None:
    (fn,) = load_target(target)
    assert fn.name == "alpha"
    assert fn.source == "loader.good:alpha"


@pytest.mark.usefixtures("importable")
def test_module_target_collects_all() -> None:
    assert [f.name for f in load_target("loader.good")] == ["alpha", "beta-renamed"]


def test_several_targets_and_duplicates() -> None:
    assert list(load_functions([GOOD, f"{GOOD}:plain"])) == ["alpha", "beta-renamed", "plain"]
    with pytest.raises(LoadError, match="two reward functions are named 'alpha'"):
        load_functions([GOOD, str(LOADER / "duplicate.py")])


def test_sources_resolve_back_to_the_same_function() -> None:
    for fn in load_target(GOOD):
        assert fn.source is not None
        assert resolve_source(fn.source) is fn


def test_a_target_that_imports_a_builtin_does_not_rewrite_its_source(tmp_path: Path) -> None:
    from reward_kit.rewards import gsm8k_reward

    rewards = tmp_path / "uses_builtin.py"
    rewards.write_text("from reward_kit.rewards import gsm8k_reward\n")
    for target in (str(rewards), f"{rewards}:gsm8k_reward"):
        (fn,) = load_target(target)
        assert fn is gsm8k_reward
        # One shared object: its import spec works in any worker and must stay as it is.
        assert fn.source == "reward_kit.rewards.math:gsm8k_reward"
        assert resolve_source(fn.source) is fn


@pytest.mark.parametrize(
    ("target", "match"),
    [
        (str(LOADER / "broken_syntax.py"), r"SyntaxError at .*broken_syntax\.py:3"),
        (
            str(LOADER / "broken_runtime.py"),
            r"ZeroDivisionError at .*broken_runtime\.py:2: division by zero",
        ),
        (str(LOADER / "missing.py"), "no such file"),
        (str(LOADER / "empty.py"), "no @reward_function found"),
        (
            f"{GOOD}:nope",
            r"there is no 'nope' in it \(reward functions in it: alpha, beta-renamed\)",
        ),
        (f"{GOOD}:NOT_A_FUNCTION", "is a int, not a function"),
        ("surely_missing_pkg.mod:fn", "no module named 'surely_missing_pkg'"),
    ],
)
def test_load_errors_are_clear(target: str, match: str) -> None:
    with pytest.raises(LoadError, match=match):
        load_functions([target])


@pytest.mark.usefixtures("importable")
@pytest.mark.parametrize(
    "target", ["loader.broken_lookup.fn", "loader.broken_lookup:fn", "loader.broken_lookup"]
)
def test_module_that_fails_to_import_reports_file_line_and_exception(target: str) -> None:
    # `pkg.mod.fn` first asks whether the whole target is a module, which imports `pkg.mod`:
    # its error must be reported like the other forms', not escape as a raw traceback.
    with pytest.raises(LoadError, match=r"KeyError at .*broken_lookup\.py:3: 'missing'"):
        load_functions([target])


def test_failed_file_does_not_stay_half_imported() -> None:
    with pytest.raises(LoadError):
        load_functions([str(LOADER / "broken_runtime.py")])
    assert not [m for m in sys.modules if "broken_runtime" in m]
