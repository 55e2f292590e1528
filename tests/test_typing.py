"""Type checkers see the right types through @reward_function (bare, options, async, batch)."""

from __future__ import annotations

from pathlib import Path

import pytest

CASES = Path(__file__).parent / "typing" / "decorator_types.py"


@pytest.mark.slow
def test_decorator_types_are_what_users_expect() -> None:
    from mypy import api

    stdout, stderr, status = api.run(
        [str(CASES), "--strict", "--no-incremental", "--cache-dir=/dev/null"]
    )
    assert status == 0, stdout + stderr
