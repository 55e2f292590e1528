"""``rk eval``: score a JSONL file locally through the same engine as the server.

Result lines go to ``--out``, or to stdout (so ``rk eval ... > results.jsonl`` works); the
progress bar and the summary always go to stderr, so stdout stays pure JSONL.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import IO, Any

import click

from .._errors import RequestRejected
from .._extras import require
from .._function import RewardFunction
from .._vocabulary import DEFAULT_DEADLINE, FAILED_STATUSES
from ._common import load_targets

__all__ = ["eval_command"]

# Summary order; "score invalid" is an "ok" row whose result says is_score_valid=False.
_STATUSES = ("ok", "score invalid", *FAILED_STATUSES)


@click.command("eval")
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="JSONL rows: {messages, ground_truth, kwargs, function, ...}.",
)
@click.option(
    "--function",
    "function_name",
    help="Which function, when TARGETS have several. [default: each row's 'function']",
)
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False), help="Results JSONL. [default: stdout]"
)
@click.option("--workers", type=int, help="Worker processes. [default: one per core]")
@click.option(
    "--timeout", type=float, help="Deadline per item in seconds (overrides the function's)."
)
@click.option("--memory-limit-mb", type=int, help="Address-space limit per worker (MiB).")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any row has no valid score.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_command(
    targets: tuple[str, ...],
    data_path: str,
    function_name: str | None,
    out_path: str | None,
    workers: int | None,
    timeout: float | None,
    memory_limit_mb: int | None,
    strict: bool,
    quiet: bool,
) -> None:
    """Evaluate reward functions from TARGETS on every row of --data, in order.

    Results are written one JSON line per row (to --out, else stdout); the progress bar and
    the summary go to stderr.
    """
    require("pebble", extra="server", feature="rk eval")
    require("orjson", extra="server", feature="rk eval")
    from rich.console import Console

    from ..engine import Call

    functions = load_targets(targets)
    _check_options(functions, function_name, timeout)
    rows = _read_rows(Path(data_path))
    plan = _plan(rows, functions, function_name)
    steps = [
        (index, Call(step[0], step[1], timeout or step[0].timeout or DEFAULT_DEADLINE))
        for index, step in enumerate(plan.steps)
        if not isinstance(step, str)
    ]
    stderr = Console(stderr=True)
    out: IO[str] | None = open(out_path, "w") if out_path else None  # noqa: SIM115
    writer = _OrderedWriter(out, [line for line, _ in rows], plan.names)
    for index, outcome in plan.failures.items():
        writer.add(index, outcome)
    label = function_name or ", ".join(sorted({c.function.name for _, c in steps})) or "rk"
    # Results on a terminal stdout pass through rich (printed above the bar); a redirected
    # stdout must never be captured, or `rk eval ... > results.jsonl` would lose them.
    progress = _progress(stderr, quiet=quiet, redirect=out is None and sys.stdout.isatty())
    try:
        asyncio.run(_score(steps, writer, progress, label, len(rows), workers, memory_limit_mb))
    finally:
        if out is not None:
            out.close()
        else:
            sys.stdout.flush()
    outcomes = [writer.done[i] for i in range(len(rows))]
    statuses = [_status(o) for o in outcomes]
    _summary(stderr, plan.names, outcomes, statuses, [line for line, _ in rows])
    if strict and any(s != "ok" for s in statuses):
        raise SystemExit(1)


def _check_options(
    functions: dict[str, RewardFunction[Any]], function_name: str | None, timeout: float | None
) -> None:
    if function_name is not None and function_name not in functions:
        raise click.BadParameter(
            f"no reward function named {function_name!r} in TARGETS "
            f"(they have: {', '.join(sorted(functions))})",
            param_hint="--function",
        )
    if timeout is not None and timeout <= 0:
        raise click.BadParameter("must be a positive number of seconds", param_hint="--timeout")


def _progress(console: Any, *, quiet: bool, redirect: bool) -> Any:
    from rich.progress import Progress

    return Progress(
        console=console, disable=quiet, transient=False, redirect_stdout=redirect,
        redirect_stderr=False,
    )  # fmt: skip


async def _score(
    steps: list[tuple[int, Any]],
    writer: _OrderedWriter,
    progress: Any,
    label: str,
    total: int,
    workers: int | None,
    memory_limit_mb: int | None,
) -> None:
    """Run every call through the engine; each result is written as soon as its turn comes."""
    from ..engine import Engine, Outcome

    with progress:
        task = progress.add_task(label, total=total)
        progress.advance(task, total - len(steps))

        def on_result(position: int, outcome: Outcome) -> None:
            writer.add(steps[position][0], outcome)
            progress.advance(task)

        if not steps:
            return
        used = {call.function.name: call.function for _, call in steps}
        async with Engine(functions=used, workers=workers, memory_limit_mb=memory_limit_mb) as e:
            await e.run([call for _, call in steps], on_result=on_result)


class _Plan:
    """Which function scores each row, or why the row is invalid (by row index)."""

    def __init__(self, size: int) -> None:
        self.steps: list[tuple[RewardFunction[Any], Any] | str] = [""] * size
        self.names: list[str | None] = [None] * size
        self.failures: dict[int, Any] = {}


def _plan(
    rows: list[tuple[int, Any]], functions: dict[str, RewardFunction[Any]], chosen: str | None
) -> _Plan:
    """A row's own ``function`` is used when --function is not given; a row naming another
    function than --function is an invalid row (never silently scored with the other one)."""
    from ..engine import failure, parse_item

    plan = _Plan(len(rows))
    default = chosen or (next(iter(functions)) if len(functions) == 1 else None)
    unnamed, named = 0, False
    for index, (line, row) in enumerate(rows):
        plan.names[index] = default
        try:
            if isinstance(row, Exception):
                raise row
            item, row_fn = parse_item(row, f"line {line}")
            named = named or row_fn is not None
            plan.names[index] = row_fn or default
            if chosen is not None and row_fn is not None and row_fn != chosen:
                raise RequestRejected(
                    f"line {line}: function: the row names {row_fn!r} but --function is {chosen!r}",
                    code="function_mismatch",
                )
            name = row_fn or default
            if name is None:
                unnamed += 1
                raise RequestRejected(
                    f"line {line}: function: TARGETS have {len(functions)} reward functions "
                    f"({', '.join(sorted(functions))}); choose one with --function NAME or a "
                    "'function' key in the row",
                    code="function_required",
                )
            fn = functions.get(name)
            if fn is None:
                raise RequestRejected(
                    f"line {line}: function: no reward function named {name!r} in TARGETS "
                    f"(they have: {', '.join(sorted(functions))})",
                    code="unknown_function",
                )
        except RequestRejected as error:
            plan.steps[index] = error.message
            plan.failures[index] = failure("invalid", error.message, code=error.code)
            continue
        plan.steps[index] = (fn, item)
    if unnamed and not named:
        # No row names a function: one usage error beats the same error on every line.
        raise click.UsageError(
            f"TARGETS have {len(functions)} reward functions "
            f"({', '.join(sorted(functions))}); choose one with --function NAME "
            "(or give each row a 'function' key)"
        )
    return plan


def _status(outcome: Any) -> str:
    if outcome.status == "ok" and outcome.result and not outcome.result.get("is_score_valid", True):
        return "score invalid"
    return str(outcome.status)


def _read_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed row or the parse error) for every non-blank line."""
    import orjson  # the server extra, checked by the command before this runs

    try:
        text = path.read_text()
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {str(path)!r}: {error.strerror}", param_hint="--data"
        ) from None
    rows: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # orjson, not json: a row nested thousands deep is a clear error, not a RecursionError.
            rows.append((number, orjson.loads(line)))
        except orjson.JSONDecodeError as error:
            rows.append(
                (
                    number,
                    RequestRejected(
                        f"line {number}: not valid JSON: {error.msg}", code="invalid_json"
                    ),
                )
            )
    return rows


class _OrderedWriter:
    """Writes result lines in input order as soon as every earlier line is done.

    With no file, lines go to ``sys.stdout`` as it is at write time (rich may proxy it).
    """

    def __init__(self, out: IO[str] | None, lines: list[int], names: list[str | None]) -> None:
        self.out, self.lines, self.names = out, lines, names
        self.done: dict[int, Any] = {}
        self.next = 0

    def add(self, index: int, outcome: Any) -> None:
        self.done[index] = outcome
        while self.next in self.done:
            record = {
                "line": self.lines[self.next],
                "function": self.names[self.next],
                **self.done[self.next].to_json(self.next),
            }
            (self.out or sys.stdout).write(json.dumps(record) + "\n")
            self.next += 1


def _summary(
    console: Any,
    names: list[str | None],
    outcomes: list[Any],
    statuses: list[str],
    lines: list[int],
) -> None:
    from rich.table import Table

    counts = Counter(statuses)
    # Only valid scores make the mean: an invalid score's 0 is not a 0.
    scores: dict[str | None, list[float]] = {}
    for name, outcome, status in zip(names, outcomes, statuses, strict=True):
        if status == "ok":
            scores.setdefault(name, []).append(outcome.result["score"])
    used = sorted({n for n, s in zip(names, statuses, strict=True) if s != "invalid" and n})
    table = Table(title=f"rk eval: {', '.join(used) or 'no rows scored'}", show_header=False)
    table.add_row("rows", str(len(outcomes)))
    for name in used if len(used) > 1 else [used[0] if used else None]:
        label = f"mean score ({name})" if len(used) > 1 else "mean score"
        values = scores.get(name, [])
        table.add_row(label, f"{statistics.fmean(values):.4f}" if values else "n/a (no scores)")
    for status in _STATUSES:
        if counts.get(status):
            table.add_row(status, str(counts[status]))
    console.print(table)
    slowest = sorted(range(len(outcomes)), key=lambda i: outcomes[i].duration_ms, reverse=True)[:5]
    if outcomes:
        console.print(
            "slowest: "
            + ", ".join(
                f"line {lines[i]} {outcomes[i].duration_ms:.1f} ms ({statuses[i]})" for i in slowest
            ),
            highlight=False,
        )
    failed = [i for i, status in enumerate(statuses) if status != "ok"][:5]
    for i in failed:
        outcome = outcomes[i]
        why = str(
            (outcome.error["message"] if outcome.error else outcome.result.get("reason"))
            or "no reason given"
        )
        prefix = f"line {lines[i]}"
        if why.startswith(prefix):  # row errors already name their line
            why = why[len(prefix) :].lstrip(":. ")
        console.print(
            f"{prefix}: {statuses[i]}: {why}",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
