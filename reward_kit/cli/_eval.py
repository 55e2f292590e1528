"""``rk eval``: score a JSONL file locally through the same engine as the server."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import IO, Any

import click

from .._errors import RequestRejected
from .._extras import require
from ._common import load_targets

__all__ = ["eval_command"]


@click.command("eval")
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="JSONL rows: {messages, ground_truth, kwargs, ...}.",
)
@click.option("--function", "function_name", help="Which function, when TARGETS have several.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write results JSONL.")
@click.option("--workers", type=int, help="Worker processes. [default: one per core]")
@click.option(
    "--timeout", type=float, help="Deadline per item in seconds (overrides the function's)."
)
@click.option("--memory-limit-mb", type=int, help="Address-space limit per worker (MiB).")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any row did not score.")
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
    """Evaluate a reward function from TARGETS on every row of --data, in order."""
    require("pebble", extra="server", feature="rk eval")
    require("orjson", extra="server", feature="rk eval")
    from ..service._engine import Call, Engine
    from ..service._outcome import Outcome, failure
    from ..service._wire import parse_item, pick_function

    functions = load_targets(targets)
    fn = pick_function(functions, function_name)
    if timeout is not None and timeout <= 0:
        raise click.BadParameter("must be a positive number of seconds", param_hint="--timeout")
    deadline = timeout or fn.timeout or 30.0

    rows = _read_rows(Path(data_path))
    slots: list[Outcome | None] = [None] * len(rows)
    calls, indices = [], []
    for index, (line, row) in enumerate(rows):
        try:
            if isinstance(row, Exception):
                raise row
            item, row_fn = parse_item(row, f"line {line}")
            if row_fn is not None and row_fn != fn.name:
                pick_function(functions, row_fn)
        except RequestRejected as error:
            slots[index] = failure("invalid", error.message, code=error.code)
            continue
        calls.append(Call(fn, item, deadline))
        indices.append(index)

    out: IO[str] | None = open(out_path, "w") if out_path else None  # noqa: SIM115
    writer = _OrderedWriter(out, [line for line, _ in rows], fn.name)
    for index, outcome in enumerate(slots):
        if outcome is not None:
            writer.add(index, outcome)

    async def run() -> None:
        from rich.progress import Progress

        with Progress(disable=quiet, transient=False) as progress:
            task = progress.add_task(f"{fn.name}", total=len(rows))
            progress.advance(task, len(rows) - len(calls))

            def on_result(position: int, outcome: Outcome) -> None:
                slots[indices[position]] = outcome
                writer.add(indices[position], outcome)
                progress.advance(task)

            async with Engine(
                functions={fn.name: fn}, workers=workers, memory_limit_mb=memory_limit_mb
            ) as engine:
                await engine.run(calls, on_result=on_result)

    try:
        asyncio.run(run())
    finally:
        if out is not None:
            out.close()
    outcomes = [o for o in slots if o is not None]
    _summary(fn.name, outcomes, [line for line, _ in rows])
    if strict and any(o.status != "ok" for o in outcomes):
        raise SystemExit(1)


def _read_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed row or the parse error) for every non-blank line."""
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
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
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
    """Writes result lines in input order as soon as every earlier line is done."""

    def __init__(self, out: IO[str] | None, lines: list[int], function: str) -> None:
        self.out, self.lines, self.function = out, lines, function
        self.pending: dict[int, Any] = {}
        self.next = 0

    def add(self, index: int, outcome: Any) -> None:
        if self.out is None:
            return
        self.pending[index] = outcome
        while self.next in self.pending:
            record = {
                "line": self.lines[self.next],
                "function": self.function,
                **self.pending.pop(self.next).to_json(self.next),
            }
            self.out.write(json.dumps(record) + "\n")
            self.next += 1


def _summary(name: str, outcomes: list[Any], lines: list[int]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    counts = Counter(o.status for o in outcomes)
    scores = [o.result["score"] for o in outcomes if o.status == "ok" and o.result]
    table = Table(title=f"rk eval: {name}", show_header=False)
    table.add_row("rows", str(len(outcomes)))
    table.add_row("mean score", f"{statistics.fmean(scores):.4f}" if scores else "n/a (no scores)")
    for status in ("ok", "error", "timeout", "crashed", "invalid"):
        if counts.get(status):
            table.add_row(status, str(counts[status]))
    console.print(table)
    slowest = sorted(range(len(outcomes)), key=lambda i: outcomes[i].duration_ms, reverse=True)[:5]
    if outcomes:
        console.print(
            "slowest: "
            + ", ".join(
                f"line {lines[i]} {outcomes[i].duration_ms:.1f} ms ({outcomes[i].status})"
                for i in slowest
            )
        )
    failed = [(lines[i], o) for i, o in enumerate(outcomes) if o.status != "ok"][:5]
    for line, outcome in failed:
        console.print(f"[red]line {line}: {outcome.status}: {outcome.error['message']}[/red]")
