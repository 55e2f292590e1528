"""Sandbox tests need bubblewrap: skip without it, fail under RK_REQUIRE_INTEGRATION=1 (CI)."""

from __future__ import annotations

import os
import shutil

import pytest

from reward_kit.sandbox import Limits, Sandbox


def require_bwrap() -> None:
    if shutil.which("bwrap"):
        return
    why = "needs bubblewrap (apt-get install bubblewrap; .ci/run installs it)"
    if os.environ.get("RK_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"RK_REQUIRE_INTEGRATION=1 but this {why}")
    pytest.skip(why)


@pytest.fixture
def sandbox() -> Sandbox:
    """A bubblewrap sandbox with tight limits, so every attack ends within seconds."""
    require_bwrap()
    return Sandbox(
        limits=Limits(
            cpu_seconds=2, wall_seconds=6, memory_mb=256, max_processes=16, max_output_bytes=65536
        )
    )
