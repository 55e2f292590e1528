"""How many items go to a worker process at once.

A chunk's round trip to a worker (pickling, the pipe, pebble's bookkeeping) costs about as
much as 20 trivial items, so trivial items want few, large chunks: one per worker. Slow items
want small ones, so that no worker sits idle at the end of a batch while another is still
working through a long chunk. The pool learns each function's item time from its outcomes (a
moving average of the time the workers measured) and gives each chunk about
``CHUNK_SECONDS`` of work; until it knows, about ``CHUNKS_PER_WORKER`` chunks per worker of at
least ``MIN_CHUNK_ITEMS`` items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._encoded import EncodedOutcome

__all__ = ["CHUNK_SECONDS", "ChunkSizer"]

CHUNK_SECONDS = 0.05
MAX_CHUNK_ITEMS = 4096
MIN_CHUNK_ITEMS = 64
CHUNKS_PER_WORKER = 4
# Weight of the newest chunk in the moving average of a function's item time.
_WEIGHT = 0.3


class ChunkSizer:
    """Chunk sizes for ``workers`` workers, from each function's item time seen so far.

    >>> sizer = ChunkSizer(workers=2)
    >>> sizer.size("f", 1000)  # nothing known yet: 4 chunks per worker
    125
    >>> sizer.observe("f", [EncodedOutcome("ok", b"{}", None, 0.01)] * 10)  # 10 us an item
    >>> sizer.size("f", 1000), sizer.size("f", 10)  # one chunk per worker
    (500, 5)
    >>> sizer.observe("f", [EncodedOutcome("ok", b"{}", None, 20.0)] * 10)  # now 20 ms
    >>> sizer.size("f", 1000)  # the average moves 30% of the way: about 6 ms an item
    9
    """

    def __init__(self, *, workers: int) -> None:
        self.workers = workers
        self._item_seconds: dict[str, float] = {}

    def size(self, function: str, count: int) -> int:
        seconds = self._item_seconds.get(function)
        if seconds is None:
            per_worker = min(CHUNKS_PER_WORKER, max(1, count // (self.workers * MIN_CHUNK_ITEMS)))
            return max(1, min(MAX_CHUNK_ITEMS, math.ceil(count / (self.workers * per_worker))))
        # Never fewer chunks than workers: one chunk each keeps them all busy.
        even = math.ceil(count / self.workers)
        return max(1, min(MAX_CHUNK_ITEMS, even, math.ceil(CHUNK_SECONDS / max(seconds, 1e-6))))

    def observe(self, function: str, outcomes: Sequence[EncodedOutcome]) -> None:
        """Learn from the outcomes of one chunk (or the part of it a worker finished)."""
        if not outcomes:
            return
        mean = sum(outcome.duration_ms for outcome in outcomes) / len(outcomes) / 1000.0
        known = self._item_seconds.get(function)
        self._item_seconds[function] = mean if known is None else known + _WEIGHT * (mean - known)
