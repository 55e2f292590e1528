"""Thread-isolated rewards that hang are reported as timeouts and never block the exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from ..conftest import HOSTILE

SCRIPT = textwrap.dedent(
    f"""
    import asyncio
    from reward_kit import load_functions
    from reward_kit.engine import Call, Engine, Item

    async def main():
        functions = load_functions([{HOSTILE!r}])
        async with Engine(functions=functions, workers=0) as engine:
            calls = [Call(functions["sleeper"], Item([{{"role": "user"}}]), 0.3)] * 3
            good = Item([{{"role": "user", "content": "4"}}], "4")
            calls.append(Call(functions["good"], good, 5))
            print([o.status for o in await engine.run(calls)])

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def test_hung_thread_rewards_time_out_and_the_process_still_exits() -> None:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['timeout', 'timeout', 'timeout', 'ok']"
    assert time.monotonic() - start < 30
