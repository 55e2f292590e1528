"""Setting a run up and down: the run directory, dataset, rewards, endpoint (a local model
started and stopped here), cache, results file, manifest and summary around the pipeline."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ._cache import GenerationCache
from ._config import RunConfig
from ._dataset import Dataset, load_dataset
from ._gc import fewer_collections
from ._manifest import build_manifest, redact_url, write_json
from ._pipeline import generate_and_score, plan_samples, score_rows
from ._progress import Progress
from ._report import render_summary, summarize, summary_warnings
from ._results import (
    MANIFEST,
    RESULTS,
    SUMMARY,
    ResultsWriter,
    prepare_run_dir,
    read_results,
    rewrite_results,
)
from ._score import Reward, load_rewards
from ._target import Target, resolve_target

if TYPE_CHECKING:  # the env client (the SDK, httpx) is imported only by an --env run
    from ._rollout import EnvRollouts

__all__ = ["execute"]


async def execute(
    config: RunConfig,
    *,
    out: Path,
    mode: str,
    progress: bool,
    console: Any,
    command: Sequence[str] | None,
    expect_dataset_sha256: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``config`` into ``out``; returns (summary, manifest)."""
    with fewer_collections():
        return await _execute(
            config,
            out=out,
            mode=mode,
            progress=progress,
            console=console,
            command=command,
            expect_dataset_sha256=expect_dataset_sha256,
        )


async def _execute(
    config: RunConfig,
    *,
    out: Path,
    mode: str,
    progress: bool,
    console: Any,
    command: Sequence[str] | None,
    expect_dataset_sha256: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()
    dataset = load_dataset(config.data, system_prompt=config.model.system_prompt)
    stderr = console
    if stderr is None and progress:
        from rich.console import Console

        stderr = Console(stderr=True)
    if expect_dataset_sha256 and expect_dataset_sha256 != dataset.sha256:
        _warn(
            stderr,
            f"warning: the dataset {dataset.path} changed since the manifest was written "
            "(its sha256 differs): this is not the same run",
        )
    _check_k(config)
    prepare_run_dir(out, mode=mode)  # type: ignore[arg-type]
    rewards, local, remotes = await load_rewards(
        config.rewards, config.scoring, env=config.env.name
    )
    env: EnvRollouts | None = None
    try:
        if config.env.name is not None:
            from ._rollout import env_reward, open_env

            threshold = config.scoring.pass_threshold
            if mode == "rescore":  # the saved entries are kept: no session is needed
                rewards.insert(0, env_reward(config.env.name, threshold, {}))
            else:
                env = await open_env(config.env)
                rewards.insert(0, env.reward(threshold))
        if local is not None:
            await local.engine.start()
        # The bar only on a terminal (a log gets the table); the table whenever asked for.
        show = stderr is not None and config.output.progress and bool(stderr.is_terminal)
        if mode == "rescore":
            manifest = _manifest(config, dataset, rewards, None, command)
            write_json(out / MANIFEST, manifest)
            requests = hits = 0
            rows = await _rescore(out, dataset, rewards, config, show=show, console=stderr)
        else:
            target = resolve_target(config)
            manifest = _manifest(config, dataset, rewards, target, command)
            write_json(out / MANIFEST, manifest)
            rows, requests, hits = await _generate(
                out, dataset, rewards, config, target, mode, show=show, console=stderr, env=env
            )
    finally:
        if env is not None:
            await env.client.aclose()
        if local is not None:
            await local.engine.close()
        for remote in remotes:
            await remote.close()
    temperature = config.model.temperature
    summary = summarize(
        rows,
        rewards=[(r.name, r.pass_threshold) for r in rewards],
        ks=config.k,
        requests=requests,
        cache_hits=hits,
        wall_s=time.perf_counter() - started,
        sampled=temperature is None or temperature > 0,
    )
    write_json(out / SUMMARY, summary)
    if stderr is not None:
        render_summary(summary, stderr, title=f"rk run: {out}")
    else:  # no table (--quiet, or progress=False): its warnings still reach stderr
        for warning in summary_warnings(summary):
            _warn(None, warning)
    return summary, manifest


def _warn(console: Any, message: str) -> None:
    if console is not None:
        console.print(message, style="yellow", highlight=False, markup=False)
    else:
        print(message, file=sys.stderr)


def _check_k(config: RunConfig) -> None:
    too_big = [k for k in config.k if k > config.samples]
    if too_big:
        raise ConfigurationError(
            f"config key 'k': pass@{too_big[0]} needs at least {too_big[0]} samples per prompt "
            f"but samples is {config.samples}; raise samples (-n) or lower k"
        )


def _manifest(
    config: RunConfig,
    dataset: Dataset,
    rewards: list[Reward],
    target: Target | None,
    command: Sequence[str] | None,
) -> dict[str, Any]:
    endpoint_info = None
    if target is not None:
        endpoint_info = {
            "base_url": redact_url(target.base_url),
            "model": target.model,
            "identity": target.identity if target.local_name else redact_url(target.identity),
        }
    return build_manifest(
        config,
        dataset=dataset,
        rewards={r.name: r.info for r in rewards},
        endpoint=endpoint_info,
        command=command if command is not None else [os.path.basename(sys.argv[0])],
    )


def _done(out: Path, config: RunConfig, rewards: list[Reward], mode: str) -> list[dict[str, Any]]:
    """On --resume: the lines of the samples already done (the results file is cut down to
    them: a torn last line, failed generations and incomplete groups go)."""
    if mode != "resume":
        return []
    rows, _ = read_results(out / RESULTS)
    names = {r.name for r in rewards}
    keep = [
        row
        for row in rows
        if row["generation"]["status"] == "ok"
        and names <= set(row.get("rewards", {}))
        and row["sample_index"] < config.samples
    ]
    if any(r.mode == "batch" for r in rewards):
        # A group reward scored a whole prompt at once: a prompt with missing samples is redone
        # as a whole (its generations come from the cache).
        counts: dict[str, int] = {}
        for row in keep:
            counts[row["prompt_id"]] = counts.get(row["prompt_id"], 0) + 1
        keep = [row for row in keep if counts[row["prompt_id"]] == config.samples]
    rewrite_results(out / RESULTS, keep)
    return keep


async def _generate(
    out: Path,
    dataset: Dataset,
    rewards: list[Reward],
    config: RunConfig,
    target: Target,
    mode: str,
    *,
    show: bool,
    console: Any,
    env: EnvRollouts | None = None,
) -> tuple[list[dict[str, Any]], int, int]:
    kept = _done(out, config, rewards, mode)
    done = {(row["prompt_id"], row["sample_index"]) for row in kept}
    samples = plan_samples(
        dataset.prompts, config, done, model_name=target.model, identity=target.identity
    )
    cache = (
        GenerationCache(config.cache.path, mode=config.cache.mode)
        if config.cache.mode != "off"
        else None
    )
    writer = ResultsWriter(out / RESULTS, fsync=config.output.fsync)
    try:
        with (
            contextlib.ExitStack() as stack,
            Progress(
                total=len(samples), label="generate+score", enabled=show, console=console
            ) as bar,
        ):
            counters = await generate_and_score(
                samples,
                config=config,
                start=lambda: target.start(stack),
                rewards=rewards,
                writer=writer,
                cache=cache,
                progress=bar,
                rollout=env.worker if env is not None else None,
            )
    finally:
        writer.close()
        if cache is not None:
            cache.close()
    return kept + writer.rows, counters.requests, counters.cache_hits


async def _rescore(
    out: Path,
    dataset: Dataset,
    rewards: list[Reward],
    config: RunConfig,
    *,
    show: bool,
    console: Any,
) -> list[dict[str, Any]]:
    rows, _ = read_results(out / RESULTS)
    temporary = out / f"{RESULTS}.rescore"
    if temporary.exists():
        temporary.unlink()
    writer = ResultsWriter(temporary, fsync=config.output.fsync)
    try:
        with Progress(total=len(rows), label="rescore", enabled=show, console=console) as bar:
            await score_rows(
                rows,
                {p.id: p for p in dataset.prompts},
                rewards=rewards,
                writer=writer,
                progress=bar,
            )
    finally:
        writer.close()
    os.replace(temporary, out / RESULTS)
    return writer.rows
