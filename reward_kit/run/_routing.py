"""Routing generated samples to the rewards: a sample's line fills in as its rewards finish,
and is appended to results.jsonl once all are in.

Pointwise rewards get batches (many samples per engine call or evaluator request, a few in
flight per reward); a ``mode="batch"`` reward gets each prompt's samples as one group once the
last of them is generated. A failed generation is not scored: its entries are ``skipped``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..engine import Item
from ._dataset import Prompt
from ._results import ResultsWriter
from ._score import Reward, skipped_entry

__all__ = ["MAX_BATCH", "Router", "Sample"]

MAX_BATCH = 1024


class Sample:
    """One (prompt, sample index) of this invocation and its result line as it fills in."""

    __slots__ = ("body", "components", "index", "key", "prompt", "remaining", "row", "seed")

    def __init__(self, prompt: Prompt, index: int, seed: int) -> None:
        self.prompt = prompt
        self.index = index
        self.seed = seed
        self.body: dict[str, Any] = {}
        self.components: dict[str, Any] = {}
        self.key = ""
        self.row: dict[str, Any] = {}
        self.remaining = 0

    def item(self) -> Item:
        row = self.row
        kwargs = self.prompt.kwargs
        if "env" in row:  # a rollout: the whole transcript, tool results included
            return Item([*row["messages"], *row["env"]["turns"]], self.prompt.ground_truth, kwargs)
        reply: dict[str, Any] = {"role": "assistant", "content": row["response"]}
        if row["generation"].get("tool_calls"):
            reply["tool_calls"] = row["generation"]["tool_calls"]
        if self.prompt.tools is not None:
            kwargs = {**kwargs, "tools": self.prompt.tools}
        return Item([*self.prompt.messages, reply], self.prompt.ground_truth, kwargs)


class Router:
    """Routes generated samples to the rewards and writes each line once it is complete."""

    def __init__(
        self, rewards: Sequence[Reward], writer: ResultsWriter, group_sizes: dict[str, int]
    ) -> None:
        self.rewards = list(rewards)
        # mode "env": the entry comes with the sample, from its rollout (rk run --env)
        self.pointwise = [r for r in rewards if r.mode not in ("batch", "env")]
        self.groupwise = [r for r in rewards if r.mode == "batch"]
        self.writer = writer
        self.pending_in_group = dict(group_sizes)
        self.group: dict[str, list[Sample]] = {}
        self.outstanding = sum(group_sizes.values())
        self.done = asyncio.Event()
        if self.outstanding == 0:
            self.done.set()
        self.completed = 0
        self.errors = 0
        self.queues: dict[str, list[Sample]] = {r.name: [] for r in self.pointwise}
        self.active: dict[str, int] = {r.name: 0 for r in self.pointwise}
        self.tasks: set[asyncio.Task[None]] = set()
        self.parallel = 4

    def generated(self, sample: Sample) -> None:
        ok = sample.row["generation"]["status"] == "ok"
        if not ok:
            self.errors += 1
            reason = f"not scored: generation failed ({sample.row['generation']['status']})"
            for reward in self.rewards:
                sample.row["rewards"][reward.name] = skipped_entry(reason)
            self._finish(sample)
        else:
            sample.remaining = len(self.pointwise) + len(self.groupwise)
            if sample.remaining == 0:
                self._finish(sample)
            for reward in self.pointwise:
                self.queues[reward.name].append(sample)
                if self.active[reward.name] < self.parallel:
                    self.active[reward.name] += 1
                    self._spawn(self._drain(reward))
            if self.groupwise:
                self.group.setdefault(sample.prompt.id, []).append(sample)
        left = self.pending_in_group[sample.prompt.id] - 1
        self.pending_in_group[sample.prompt.id] = left
        if left == 0 and self.groupwise:
            members = self.group.pop(sample.prompt.id, [])
            if members:
                for reward in self.groupwise:
                    self._spawn(self._score(reward, members))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _drain(self, reward: Reward) -> None:
        try:
            await asyncio.sleep(0)  # let the replies arriving in this loop turn join the batch
            queue = self.queues[reward.name]
            while queue:
                batch = queue[:MAX_BATCH]
                del queue[:MAX_BATCH]
                await self._score(reward, batch)
        finally:
            self.active[reward.name] -= 1

    async def _score(self, reward: Reward, samples: list[Sample]) -> None:
        try:
            entries = await reward.scorer.score(reward.name, [s.item() for s in samples])
        except Exception as error:  # a scorer bug must not hang the run: each sample says so
            message = f"scoring failed: {type(error).__name__}: {error}"
            entries = [{**skipped_entry(message), "status": "error"} for _ in samples]
        for sample, entry in zip(samples, entries, strict=True):
            sample.row["rewards"][reward.name] = entry
            sample.remaining -= 1
            if sample.remaining == 0:
                self._finish(sample)

    def _finish(self, sample: Sample) -> None:
        # Rewards in config order, whatever order they finished in.
        if len(self.rewards) > 1:
            rewards = sample.row["rewards"]
            sample.row["rewards"] = {r.name: rewards[r.name] for r in self.rewards}
        self.writer.add(sample.row)
        self.completed += 1
        self.outstanding -= 1
        if self.outstanding == 0:
            self.done.set()
