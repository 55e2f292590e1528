"""The execution engine: runs reward functions where their isolation says, under deadlines.

Worker processes that can be killed (pebble), threads and event loops for the rest, and the
containment that keeps one item's side effects from reaching the next. It knows nothing of
HTTP: the evaluator (``reward_kit.service``), ``rk eval`` and composite rewards all run
through :class:`Engine`. See docs/execution-engine.md.

>>> from reward_kit.engine import Item, failure
>>> failure("timeout", "too slow").error["code"]
'timeout'
"""

from __future__ import annotations

from ._encoded import EncodedOutcome
from ._engine import Call, Engine, default_memory_limit_mb, default_workers
from ._items import (
    MAX_JSON_DEPTH,
    check_kwargs,
    parse_batch,
    parse_item,
    parse_json,
    reserved_kwargs,
)
from ._outcome import (
    DeadlineSignal,
    Item,
    Outcome,
    Status,
    aevaluate_item,
    evaluate_group,
    evaluate_item,
    failure,
)
from ._raw import RawItem
from ._threads import DaemonThreads

__all__ = [
    "Call",
    "DaemonThreads",
    "DeadlineSignal",
    "EncodedOutcome",
    "Engine",
    "Item",
    "MAX_JSON_DEPTH",
    "Outcome",
    "RawItem",
    "Status",
    "aevaluate_item",
    "check_kwargs",
    "default_memory_limit_mb",
    "default_workers",
    "evaluate_group",
    "evaluate_item",
    "failure",
    "parse_batch",
    "parse_item",
    "parse_json",
    "reserved_kwargs",
]
