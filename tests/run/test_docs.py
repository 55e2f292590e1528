"""docs/run.md's config reference is generated from the config models and kept current."""

from __future__ import annotations

from typing import get_args, get_origin

from pydantic import BaseModel

from reward_kit.run import RunConfig
from reward_kit.run._docs import COMMAND, config_table, render

from ..conftest import ROOT

DOC = ROOT / "docs" / "run.md"


def test_the_config_reference_is_current() -> None:
    text = DOC.read_text()
    assert render(text) == text, f"docs/run.md is stale: run {COMMAND}"


def leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        nested = [
            a
            for a in (field.annotation, *get_args(field.annotation))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested:
            listed = get_origin(field.annotation) is list
            keys += leaves(nested[0], f"{prefix}{name}.{'N.' if listed else ''}")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_key_is_in_the_reference() -> None:
    table = config_table()
    keys = leaves(RunConfig)
    assert "model.temperature" in keys
    assert "rewards.N.target" in keys
    for key in keys:
        assert f"| `{key}` |" in table, key


def test_the_readme_links_the_doc() -> None:
    assert "docs/run.md" in (ROOT / "README.md").read_text()
