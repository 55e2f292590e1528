"""Sandbox tests need bubblewrap: skip without it, fail under RK_REQUIRE_INTEGRATION=1 (CI)."""

from __future__ import annotations

import pytest

from reward_kit.sandbox import Limits, Sandbox

from ..conftest import require_integration


def require_bwrap() -> None:
    require_integration("bwrap")


@pytest.fixture
def sandbox() -> Sandbox:
    """A bubblewrap sandbox with tight limits, so every attack ends within seconds."""
    require_bwrap()
    return Sandbox(
        limits=Limits(
            cpu_seconds=2, wall_seconds=6, memory_mb=256, max_processes=16, max_output_bytes=65536
        )
    )
