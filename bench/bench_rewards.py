"""Built-in reward throughput: math-verify against TRL's accuracy_reward, and HumanEval.

(a) Math: the 233 math-verify regression cases (/work/shared/data/math_verify_cases.jsonl).
    Baseline: TRL's own `trl.rewards.accuracy_reward`, called once over all the cases,
    sequentially in this process, as a GRPOTrainer calls it. Against it: `math_verify_reward`
    in a loop in this process, and through the engine's worker pool (items/s). Also the
    verdicts of both against the cases' expected answers, and where TRL and we differ.
(b) HumanEval: the 164 canonical solutions. Baseline: `humaneval_reward` called in a loop in
    this process (each item still runs in its own bubblewrap sandbox). Against it: the
    engine's worker pool, and `rk eval` (a subprocess, start-up included).

Prints markdown. RK_BENCH_RUNS (default 5) sets how many runs each median takes; the runs of
the compared paths are interleaved so that machine noise hits them alike. Full data sets,
no subsets: with the default 5 runs the script takes about 2 minutes on 2 cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _common import ROOT, RUNS, table

from reward_kit.engine import Call, Engine, Item, default_workers
from reward_kit.rewards import humaneval_problems, humaneval_reward, math_verify_reward

CASES = ROOT.parent / "shared" / "data" / "math_verify_cases.jsonl"
EXAMPLES = 5  # differing math cases listed


def say(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


def interleaved(paths: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median seconds of each path over RUNS rounds; each round runs every path once."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(RUNS):
        for name, run in paths.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


class Pool:
    """A started engine on its own event loop, driven synchronously (start-up not timed)."""

    def __init__(self, fn: Any, items: list[Item], timeout: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = Engine(functions={fn.name: fn})
        self.calls = [Call(fn, item, timeout) for item in items]
        self.loop.run_until_complete(self.engine.start())

    def run(self) -> list[float]:
        outcomes = self.loop.run_until_complete(self.engine.run(self.calls))
        failed = [o.error for o in outcomes if o.status != "ok" or o.result is None]
        if failed:
            raise RuntimeError(f"{len(failed)} item(s) failed: {failed[:3]}")
        return [float(o.result["score"]) for o in outcomes if o.result is not None]

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.close())
        self.loop.close()


def cell(text: str, width: int = 44) -> str:
    shown = " ".join(text.split())
    shown = shown if len(shown) <= width else shown[: width - 3] + "..."
    return "`" + shown.replace("|", "\\|").replace("`", "'") + "`"


def rate_rows(count: int, seconds: dict[str, float], labels: dict[str, str]) -> list[list[str]]:
    base = seconds[next(iter(labels))]  # the first row is the baseline
    return [
        [labels[name], f"{count / seconds[name]:.1f}", f"{base / seconds[name]:.2f}x"]
        for name in labels
    ]


# -- (a) math --------------------------------------------------------------------------------

# Why TRL's score differs from ours, by what TRL logged as the parsed answer (its `log_extra`).
WHY = {
    "gold": "TRL could not parse the gold and returned None (a trainer skips the example)",
    "none": "TRL found no answer: it reads only LaTeX after `\\boxed{}` or an 'answer:' / "
    "'final answer is' anchor (`try_extract_without_anchor=False`), and these predictions are "
    "plain text or unanchored LaTeX, which ours reads as the upstream test configures it",
    "raw": "TRL extracted the answer but could not convert it: it normalizes units only, not "
    "shorthand LaTeX such as `\\frac94`, `\\sqrt 2`, `\\tfrac12`",
    "span": "both extracted an answer, the verdicts differ: TRL's `first_match` takes the first "
    "anchored span, which is not always the stated answer",
}


def kind(answer_parsed: str) -> str:
    if answer_parsed == "[skipped]":
        return "gold"
    if answer_parsed == "[unparseable]":
        return "none"
    # str() of math-verify's parse: [sympy object, text], or just [text] when conversion failed.
    return "raw" if answer_parsed.startswith(("['", '["')) else "span"


def logged_text(answer_parsed: str) -> str:
    """The matched text, the last item of the logged ``str([sympy object, text])``."""
    found = re.search(r"'((?:[^'\\]|\\.)*)'\]$", answer_parsed)
    return found.group(1).replace("\\\\", "\\") if found else answer_parsed


def case_why(prediction: str, answer_parsed: str) -> str:
    found = kind(answer_parsed)
    if found == "none":
        if "boxed" in prediction or "answer" in prediction.lower():
            return "TRL's anchored extraction found nothing"
        if "$" in prediction or "\\" in prediction:
            return "LaTeX without `\\boxed{}` or an anchor: TRL extracts nothing"
        return "plain text: TRL extracts LaTeX only"
    if found == "raw":
        return f"TRL extracted {cell(logged_text(answer_parsed), 28)} but could not convert it"
    if found == "span":
        return f"TRL took the first anchored span, {cell(logged_text(answer_parsed), 28)}"
    return WHY["gold"]


def math() -> list[str]:
    from trl.rewards import accuracy_reward

    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    items = [
        Item(
            say(c["prediction"]),
            ground_truth=c["gold"],
            kwargs={"match_types": c["match_types"], "float_rounding": c["float_rounding"]},
        )
        for c in cases
    ]
    completions = [[{"role": "assistant", "content": c["prediction"]}] for c in cases]
    solution = [c["gold"] for c in cases]

    def ours(subset: list[Item]) -> list[float]:
        return [
            math_verify_reward(i.messages, ground_truth=i.ground_truth, **i.kwargs).score
            for i in subset
        ]

    logged: dict[str, list[str]] = {}
    trl_scores = accuracy_reward(completions, solution, log_extra=logged.__setitem__)  # warm
    our_scores = ours(items)  # warm: sympy and the LaTeX parser load on first use
    # Same work: the cases where TRL extracts an answer, so it too parses both and verifies.
    same = [i for i, a in enumerate(logged["answer_parsed"]) if kind(a) in ("raw", "span")]
    same_completions, same_solution = [completions[i] for i in same], [solution[i] for i in same]
    same_items = [items[i] for i in same]
    pool = Pool(math_verify_reward, items, 30.0)
    try:
        pool_scores = pool.run()  # warm: imports and caches in every worker
        seconds = interleaved(
            {
                "trl": lambda: accuracy_reward(completions, solution),
                "loop": lambda: ours(items),
                "pool": pool.run,
                "trl_same": lambda: accuracy_reward(same_completions, same_solution),
                "loop_same": lambda: ours(same_items),
            }
        )
    finally:
        pool.close()
    assert pool_scores == our_scores, "the pool and the in-process loop disagree"

    n = len(cases)
    trl_label = "TRL `accuracy_reward`, one call, sequential in-process (baseline)"
    loop_label = "`math_verify_reward`, one process in a loop"
    rates = table(
        [f"path, all {n} cases", "items/s (median)", "ratio to TRL"],
        rate_rows(
            n,
            seconds,
            {
                "trl": trl_label,
                "loop": loop_label,
                "pool": f"`math_verify_reward`, engine worker pool ({default_workers()} workers)",
            },
        ),
    )
    same_rates = table(
        [f"path, the {len(same)} cases where TRL extracts an answer", "items/s (median)",
         "ratio to TRL"],
        rate_rows(len(same), seconds,
                  {"trl_same": trl_label, "loop_same": loop_label}),
    )  # fmt: skip
    ours_ok = sum((s == 1.0) == c["expected"] for s, c in zip(our_scores, cases, strict=True))
    trl_ok = sum(
        s is not None and (s == 1.0) == c["expected"]
        for s, c in zip(trl_scores, cases, strict=True)
    )
    differ = [
        (case, t, o, answer)
        for case, t, o, answer in zip(
            cases, trl_scores, our_scores, logged["answer_parsed"], strict=True
        )
        if t != o
    ]
    counts = {k: sum(kind(a) == k for *_, a in differ) for k in WHY}
    agreement = table(
        [f"verdicts on the {n} cases", "agree with the upstream `expected`"],
        [
            ["`math_verify_reward` (each case's `match_types`, `float_rounding`)",
             f"{ours_ok} ({ours_ok / n:.1%})"],
            ["TRL `accuracy_reward` (its fixed settings; None counts as a miss)",
             f"{trl_ok} ({trl_ok / n:.1%})"],
        ],
    )  # fmt: skip
    lines = [
        "### (a) math-verify: `math_verify_reward` against TRL's `accuracy_reward`",
        "",
        f"The {n} (gold, prediction, expected) regression cases of Math-Verify "
        "(`math_verify_cases.jsonl`). The baseline is TRL's own reward "
        f"(`from trl.rewards import accuracy_reward`; trl {_version('trl')}, math-verify "
        f"{_version('math-verify')}) called once over all cases in this process, as a trainer "
        "calls it. Where TRL's extraction finds no answer it skips verify, so on all cases it "
        "does less work than ours; the second table compares the cases where both do the same "
        "steps (parse gold, parse answer, verify).",
        "",
        rates,
        "",
        same_rates,
        "",
        agreement,
        "",
        f"TRL and `math_verify_reward` give different scores on **{len(differ)} of {n}** cases"
        + (":" if differ else "."),
    ]
    if differ:
        lines += ["", *[f"- {counts[k]}: {WHY[k]}." for k in WHY if counts[k]]]
        # One example of each kind, then one from each other upstream test function.
        examples = [next(d for d in differ if kind(d[3]) == k) for k in WHY if counts[k]]
        sources = {case["source"] for case, *_ in examples}
        for case, *rest in differ:
            if len(examples) < EXAMPLES and case["source"] not in sources:
                sources.add(case["source"])
                examples.append((case, *rest))
        lines += [
            "",
            table(
                ["gold", "prediction", "expected", "TRL", "ours", "why"],
                [
                    [cell(c["gold"]), cell(c["prediction"]), c["expected"], t, o,
                     case_why(c["prediction"], a)]
                    for c, t, o, a in examples
                ],
            ),
        ]  # fmt: skip
    return lines


def _version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


# -- (b) HumanEval ---------------------------------------------------------------------------


def humaneval() -> list[str]:
    problems = humaneval_problems()
    items = [Item(say(p["canonical_solution"]), ground_truth=p) for p in problems]

    def loop() -> None:
        for item in items:
            humaneval_reward(item.messages, ground_truth=item.ground_truth)

    humaneval_reward(items[0].messages, ground_truth=items[0].ground_truth)  # warm
    paths: dict[str, Callable[[], object]] = {"baseline": loop}
    labels = {
        "baseline": "`humaneval_reward`, one process in a loop (baseline)",
        "pool": f"`humaneval_reward`, engine worker pool ({default_workers()} workers)",
    }
    pool = Pool(humaneval_reward, items, 60.0)
    with tempfile.TemporaryDirectory() as folder:
        try:
            scores = pool.run()  # warm
            assert scores == [1.0] * len(problems), "a canonical solution did not score 1.0"
            paths["pool"] = pool.run
            rk = Path(sys.executable).parent / "rk"
            if rk.exists():
                data = Path(folder, "humaneval.jsonl")
                data.write_text(
                    "".join(
                        json.dumps({"messages": i.messages, "ground_truth": i.ground_truth}) + "\n"
                        for i in items
                    )
                )
                out = Path(folder, "out.jsonl")
                command = [str(rk), "eval", "reward_kit.rewards:humaneval_reward", "--data",
                           str(data), "--quiet", "--strict", "--out", str(out)]  # fmt: skip
                paths["rk_eval"] = lambda: subprocess.run(command, check=True, capture_output=True)
                labels["rk_eval"] = "`rk eval reward_kit.rewards:humaneval_reward` (incl. start-up)"
            seconds = interleaved(paths)
        finally:
            pool.close()
    return [
        "### (b) HumanEval in the bubblewrap sandbox",
        "",
        f"The {len(problems)} canonical solutions (all score 1.0). The baseline is the same "
        "`humaneval_reward` called sequentially in this process; every item still runs in its "
        "own bubblewrap sandbox, so the pool's gain is overlapping sandbox start-ups and test "
        "runs across cores. Inside, `check` runs in a verdict process that never runs the "
        "solution's code, each `candidate(...)` a round trip answered with plain data "
        "(docs/sandbox.md). There is no TRL counterpart: `trl.rewards` has no code-execution "
        "reward.",
        "",
        table(
            ["path (164 problems)", "items/s (median)", "ratio to the loop"],
            rate_rows(len(items), seconds, labels),
        ),
    ]


def main() -> None:
    lines = [
        f"## Built-in rewards: math-verify against TRL, and HumanEval (median of {RUNS} runs)",
        "",
        *math(),
        "",
        *humaneval(),
        "",
        "Command: `python bench/bench_rewards.py` (or `make bench`, which runs every "
        "bench/bench_*.py); `RK_BENCH_RUNS=N` sets the number of runs. Pool figures exclude "
        "the pool's start-up (see the start-up benchmark); each path is warmed once first.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
