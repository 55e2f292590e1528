"""The progress bar on stderr: done/total, samples per second, cache hits, errors, ETA.

Redrawn a few times a second from counters, never once per sample (per-sample display updates
are what collapsed a peer's throughput at scale: inspect_ai #3173).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Progress"]


class Progress:
    """A rich progress bar on ``console`` (stderr by default), or nothing when not enabled."""

    def __init__(self, *, total: int, label: str, enabled: bool, console: Any = None) -> None:
        self.total = total
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        # Short columns and a short bar: the whole line fits an 80-column terminal (rich cuts
        # columns that do not fit, numbers included).
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=10),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.0f}/s"),
            TextColumn("cached {task.fields[cached]} err {task.fields[errors]}"),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            auto_refresh=False,
            transient=False,
        )
        self._task = self._bar.add_task(label, total=total, rate=0.0, cached=0, errors=0)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.refresh()
            self._bar.stop()

    def update(self, *, done: int, rate: float, cached: int, errors: int) -> None:
        if self._bar is None:
            return
        self._bar.update(self._task, completed=done, rate=rate, cached=cached, errors=errors)
        self._bar.refresh()
