"""One run, end to end: generate, score and write, overlapped.

Generation is a fixed pool of ``limits.max_concurrency`` workers pulling samples from one
iterator (never a task per sample up front). Cache hits are looked up in bulk before any
request and skip the pool. As a sample's reply arrives it goes to each pointwise reward's
batcher (many samples per engine call or evaluator request); when the last sample of a prompt
arrives, each ``mode="batch"`` reward scores the prompt's samples as one group. A sample's line
is appended to results.jsonl once all its rewards are in. A flusher writes the results and the
cache entries and redraws the progress bar a few times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import GenerationError
from ._cache import GenerationCache, cache_key
from ._config import RunConfig
from ._dataset import Prompt
from ._generate import (
    Choice,
    Endpoint,
    Generator,
    Reply,
    derive_seed,
    request_body,
    sampling_parameters,
)
from ._progress import Progress
from ._results import ResultsWriter
from ._routing import Router, Sample
from ._score import Reward

__all__ = ["generate_and_score", "plan_samples", "row_for", "score_rows"]

_FLUSH_SECONDS = 0.2
Rollout = Callable[[Iterator[list["Sample"]], Generator, Router], Awaitable[None]]


def row_for(sample: Sample, reply: Reply | None, choice: Choice | None, cached: bool) -> None:
    """Fill ``sample.row`` from its reply (``choice`` None: the generation failed)."""
    generation: dict[str, Any]
    if choice is not None:
        generation = {
            "status": "ok",
            "finish_reason": choice.finish_reason,
            "usage": reply.usage if reply is not None else None,
            "cached": cached,
            "attempts": reply.attempts if reply is not None else 0,
        }
        if choice.tool_calls:
            generation["tool_calls"] = choice.tool_calls
    else:
        assert reply is not None
        generation = {
            "status": reply.status,
            "finish_reason": None,
            "usage": None,
            "cached": False,
            "attempts": reply.attempts,
            "error": reply.error,
        }
    sample.row = {
        "prompt_id": sample.prompt.id,
        "sample_index": sample.index,
        "seed": sample.seed,
        "messages": sample.prompt.messages,
        "response": choice.content if choice is not None else None,
        "ground_truth": sample.prompt.ground_truth,
        "generation": generation,
        "rewards": {},
    }


@dataclass
class Counters:
    requests: int = 0
    cache_hits: int = 0


async def _flusher(
    scoring: Router,
    writer: ResultsWriter,
    cache: GenerationCache | None,
    progress: Progress,
    counters: Counters,
    started: float,
) -> None:
    while True:
        await asyncio.sleep(_FLUSH_SECONDS)
        writer.flush()
        if cache is not None:
            cache.flush()
        elapsed = max(time.perf_counter() - started, 1e-9)
        progress.update(
            done=scoring.completed,
            rate=scoring.completed / elapsed,
            cached=counters.cache_hits,
            errors=scoring.errors,
        )


def plan_samples(
    prompts: Sequence[Prompt], config: RunConfig, done: set[tuple[str, int]], model_name: str,
    identity: str,
) -> list[Sample]:  # fmt: skip
    """Every sample still owed, with its request body, seed and cache key."""
    samples = []
    model = config.model
    parameters = sampling_parameters(model)
    namespace = config.cache.namespace
    keyed = config.cache.mode != "off"  # no cache: no key to compute
    for prompt in prompts:
        for index in range(config.samples):
            if done and (prompt.id, index) in done:
                continue
            sample = Sample(prompt, index, derive_seed(config.seed, prompt.id, index))
            sample.body = request_body(
                prompt, model, model_name=model_name, seed=sample.seed, parameters=parameters
            )
            sample.components = {
                "endpoint": identity,
                "model": model_name,
                "body": sample.body,
                "seed": sample.seed,
                "index": index,
                "namespace": namespace,
            }
            if keyed:
                sample.key = cache_key(sample.components)
            samples.append(sample)
    return samples


async def generate_and_score(
    samples: list[Sample],
    *,
    config: RunConfig,
    start: Callable[[], Endpoint],
    rewards: Sequence[Reward],
    writer: ResultsWriter,
    cache: GenerationCache | None,
    progress: Progress,
    rollout: Rollout | None = None,
) -> Counters:
    """Generate every sample (cache first), score it, append its line. With ``rollout``
    (``rk run --env``) each sample is a multi-turn rollout instead, never cached."""
    counters = Counters()
    sizes: dict[str, int] = {}
    for sample in samples:
        sizes[sample.prompt.id] = sizes.get(sample.prompt.id, 0) + 1
    scoring = Router(rewards, writer, sizes)
    started = time.perf_counter()
    if rollout is not None:
        cache = None  # a turn's reply depends on the session: nothing to look up or store
    hits = cache.get_many(s.key for s in samples) if cache is not None else {}
    misses: list[Sample] = []
    for sample in samples:
        value = hits.get(sample.key)
        if value is None:
            misses.append(sample)
            continue
        counters.cache_hits += 1
        choice = Choice(value["response"], value.get("finish_reason"), value.get("tool_calls"))
        row_for(sample, Reply("ok", [choice], value.get("usage"), 0), choice, cached=True)
        scoring.generated(sample)
    flusher = asyncio.ensure_future(_flusher(scoring, writer, cache, progress, counters, started))
    try:
        if misses:  # else no endpoint at all: a cached re-run starts no local server
            generator = Generator(
                endpoint=start(), limits=config.limits, max_tokens=config.model.max_tokens
            )
            async with generator:
                jobs = _jobs(misses, use_n=config.model.use_n)
                workers = [
                    asyncio.ensure_future(
                        _worker(jobs, generator, scoring, cache)
                        if rollout is None
                        else rollout(jobs, generator, scoring)
                    )
                    for _ in range(min(config.limits.max_concurrency, len(misses)))
                ]
                try:
                    await _until_first_error(workers)
                finally:
                    counters.requests = generator.requests
        await scoring.done.wait()
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        for task in list(scoring.tasks):
            task.cancel()
        writer.flush()
        if cache is not None:
            cache.flush()
        elapsed = max(time.perf_counter() - started, 1e-9)
        progress.update(
            done=scoring.completed,
            rate=scoring.completed / elapsed,
            cached=counters.cache_hits,
            errors=scoring.errors,
        )
    return counters


async def score_rows(
    rows: list[dict[str, Any]],
    prompts: dict[str, Prompt],
    *,
    rewards: Sequence[Reward],
    writer: ResultsWriter,
    progress: Progress,
) -> None:
    """Score saved generations again (``--rescore``): no request to the model."""
    samples = []
    for row in rows:
        # What was sent and its ground truth come from the line; the dataset (when the prompt is
        # still in it) gives the keyword arguments and tools, which lines do not repeat.
        known = prompts.get(row["prompt_id"])
        prompt = Prompt(
            row["prompt_id"],
            row["messages"],
            row.get("ground_truth"),
            known.kwargs if known is not None else {},
            known.tools if known is not None else None,
        )
        sample = Sample(prompt, row["sample_index"], row["seed"])
        # A rollout's env reward cannot be recomputed without its session: it is kept.
        kept = {r.name: row["rewards"][r.name] for r in rewards if r.mode == "env"}
        sample.row = {**row, "rewards": kept}
        samples.append(sample)
    sizes: dict[str, int] = {}
    for sample in samples:
        sizes[sample.prompt.id] = sizes.get(sample.prompt.id, 0) + 1
    scoring = Router(rewards, writer, sizes)
    counters = Counters()
    flusher = asyncio.ensure_future(
        _flusher(scoring, writer, None, progress, counters, time.perf_counter())
    )
    try:
        for sample in samples:
            scoring.generated(sample)
        await scoring.done.wait()
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        writer.flush()


def _jobs(samples: list[Sample], *, use_n: bool) -> Iterator[list[Sample]]:
    """Work items for the pool: one sample each, or a prompt's samples together with ``n``."""
    if not use_n:
        for sample in samples:
            yield [sample]
        return
    by_prompt: dict[str, list[Sample]] = {}
    for sample in samples:
        by_prompt.setdefault(sample.prompt.id, []).append(sample)
    yield from by_prompt.values()


async def _worker(
    jobs: Iterator[list[Sample]],
    generator: Generator,
    scoring: Router,
    cache: GenerationCache | None,
) -> None:
    for job in jobs:  # one shared iterator: next() never awaits, so no two workers share a job
        while job:
            first = job[0]
            body = first.body if len(job) == 1 else {**first.body, "n": len(job)}
            reply = await generator.complete(body)
            if reply.status != "ok":
                for sample in job:
                    row_for(sample, reply, None, cached=False)
                    scoring.generated(sample)
                break
            # Servers that ignore n answer fewer choices: the rest are asked for again.
            served, job = job[: len(reply.choices)], job[len(reply.choices) :]
            for position, (sample, choice) in enumerate(zip(served, reply.choices, strict=False)):
                # One request's usage is counted once, on its first sample.
                row_for(sample, reply if position == 0 else _no_usage(reply), choice, cached=False)
                if cache is not None and (choice.content or choice.tool_calls):
                    cache.put(sample.key, _cached_value(choice, reply), sample.components)
                scoring.generated(sample)


def _no_usage(reply: Reply) -> Reply:
    return Reply(reply.status, reply.choices, None, reply.attempts, reply.error)


def _cached_value(choice: Choice, reply: Reply) -> dict[str, Any]:
    value: dict[str, Any] = {
        "response": choice.content,
        "finish_reason": choice.finish_reason,
        "usage": reply.usage,
    }
    if choice.tool_calls:
        value["tool_calls"] = choice.tool_calls
    return value


async def _until_first_error(tasks: Sequence[asyncio.Future[None]]) -> None:
    """Wait for every task; the first to fail cancels the rest and its error is raised (an
    auth error stops the run at once instead of failing every remaining sample)."""
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    # Every finished task's exception is retrieved (several workers can fail at once).
    finished = [t for t in done if not t.cancelled()]
    errors = [t.exception() for t in finished]
    failed = next((t for t, e in zip(finished, errors, strict=False) if e is not None), None)
    if failed is None:
        return
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    error = failed.exception()
    assert error is not None
    if isinstance(error, GenerationError):
        raise GenerationError(
            f"run stopped: {error.message}", kind=error.kind, retry_after=error.retry_after
        ) from error
    raise error
