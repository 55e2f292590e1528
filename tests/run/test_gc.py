"""A run collects garbage less often while it lasts, and leaves the settings as it found them."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from reward_kit import RewardKitError
from reward_kit.run._gc import fewer_collections

from ._fake_openai import FakeOpenAI
from .conftest import run_on


def test_settings_are_restored_when_the_last_block_ends() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with fewer_collections():
        assert gc.get_threshold()[0] >= 50_000
        assert gc.get_freeze_count() > frozen
        with fewer_collections():  # a second run at the same time
            pass
        assert gc.get_threshold()[0] >= 50_000  # still on: the first run is not over
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_a_run_restores_them_even_when_it_fails(
    fake_openai: FakeOpenAI, prompts: str, tmp_path: Path
) -> None:
    before = gc.get_threshold()
    run_on(fake_openai, prompts, tmp_path / "run")
    assert gc.get_threshold() == before
    with pytest.raises(RewardKitError):
        run_on(fake_openai, prompts, tmp_path / "bad", rewards=["no_such_file.py"])
    assert gc.get_threshold() == before
