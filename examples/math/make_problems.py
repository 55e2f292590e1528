"""Write problems.jsonl: 30 math problems with integer answers, from a fixed seed: 10 one-digit
sums and differences (which SmolLM2-135M gets right now and then: pass@k shows the gap), then
20 word problems (two from each of ten templates).

Each row has ``id``, ``prompt``, ``ground_truth`` (the answer, as text) and ``solution`` (the
arithmetic that gives it; tests/run/test_examples.py evaluates it and checks the answer).
Run ``python examples/math/make_problems.py`` to regenerate the same file.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

Problem = tuple[str, str]  # (question, the arithmetic of the answer)


def _small(r: random.Random) -> Problem:
    a, b = r.randint(2, 9), r.randint(1, 9)
    if r.random() < 0.5 and a > b:
        return f"What is {a} - {b}?", f"{a} - {b}"
    return f"What is {a} + {b}?", f"{a} + {b}"


def _more(r: random.Random) -> Problem:
    a, b = r.randint(12, 60), r.randint(5, 40)
    return f"A farmer has {a} cows and buys {b} more. How many cows does the farmer have?", (
        f"{a} + {b}"
    )


def _left(r: random.Random) -> Problem:
    a, b, c = r.randint(60, 120), r.randint(5, 25), r.randint(5, 25)
    return (
        f"A shop had {a} shirts. It sold {b} on Monday and {c} on Tuesday. "
        "How many shirts are left?",
        f"{a} - {b} - {c}",
    )


def _boxes(r: random.Random) -> Problem:
    a, b = r.randint(6, 24), r.randint(3, 12)
    return f"A box holds {a} pencils. How many pencils are in {b} boxes?", f"{a} * {b}"


def _share(r: random.Random) -> Problem:
    each, children = r.randint(3, 12), r.randint(2, 9)
    total = each * children
    return (
        f"{total} cookies are shared equally among {children} children. "
        "How many cookies does each child get?",
        f"{total} // {children}",
    )


def _distance(r: random.Random) -> Problem:
    speed, hours = r.randrange(40, 120, 5), r.randint(2, 6)
    return (
        f"A train travels at {speed} km per hour for {hours} hours. How many km does it travel?",
        f"{speed} * {hours}",
    )


def _weeks(r: random.Random) -> Problem:
    pages, weeks = r.randint(5, 30), r.randint(2, 4)
    return (
        f"Mia reads {pages} pages every day. How many pages does she read in {weeks} weeks?",
        f"{pages} * 7 * {weeks}",
    )


def _area(r: random.Random) -> Problem:
    length, width = r.randint(4, 25), r.randint(3, 15)
    return (
        f"A rectangle is {length} cm long and {width} cm wide. What is its area in square cm?",
        f"{length} * {width}",
    )


def _bags(r: random.Random) -> Problem:
    start, bags, each = r.randint(3, 30), r.randint(2, 6), r.randint(4, 12)
    return (
        f"Tom has {start} marbles. He buys {bags} bags with {each} marbles in each bag. "
        "How many marbles does he have now?",
        f"{start} + {bags} * {each}",
    )


def _percent(r: random.Random) -> Problem:
    percent, base = r.choice([10, 20, 25, 50, 75]), r.randrange(40, 400, 20)
    return f"What is {percent} percent of {base}?", f"{percent} * {base} // 100"


def _sum_difference(r: random.Random) -> Problem:
    small, gap = r.randint(5, 40), r.randint(2, 20)
    large = small + gap
    return (
        f"The sum of two numbers is {small + large} and their difference is {gap}. "
        "What is the larger number?",
        f"({small + large} + {gap}) // 2",
    )


TEMPLATES: list[Callable[[random.Random], Problem]] = [
    _more, _left, _boxes, _share, _distance, _weeks, _area, _bags, _percent, _sum_difference,
]  # fmt: skip
SMALL = 10
PER_TEMPLATE = 2
SEED = 14


def problems() -> list[dict[str, str]]:
    """The rows, the same on every run (a seeded generator)."""
    rng = random.Random(SEED)
    rows = []
    for template in [_small] * SMALL + TEMPLATES * PER_TEMPLATE:
        question, solution = template(rng)
        # Integer arithmetic with //: the divisions above are exact by construction.
        answer = eval(solution, {"__builtins__": {}})  # our own expression, not input
        rows.append(
            {
                "id": f"math-{len(rows) + 1:02d}",
                "prompt": question,
                "ground_truth": str(answer),
                "solution": f"{solution} = {answer}",
            }
        )
    return rows


def main() -> None:
    path = Path(__file__).with_name("problems.jsonl")
    path.write_text("".join(json.dumps(row) + "\n" for row in problems()))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
