"""``rk run``: generate with a model, score with reward functions, report (docs/run.md); and
``rk cache stats|clear`` for the generation cache it shares across runs."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from typing import Any

import click

from .._errors import ConfigurationError
from .._extras import require
from ._common import cwd_importable

__all__ = ["cache_group", "run_command"]


def _k_list(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter("expected integers separated by commas, e.g. 1,4,16") from None
    return value


@click.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--data", help="Prompts: JSONL, or a file/folder `datasets` reads.  [data.path]")
@click.option("--model", help="Model name, or local:smollm2 for the local model.  [model.name]")
@click.option("--base-url", help="OpenAI-compatible endpoint, e.g. .../v1.  [model.base_url]")
@click.option("--api-key-env", help="Environment variable holding the API key.")
@click.option("-n", "--samples", type=click.IntRange(min=1), help="Samples per prompt.")
@click.option(
    "--reward",
    "rewards",
    multiple=True,
    help="TARGET (file.py, file.py:fn, pkg.mod:fn) or URL#FUNCTION of a served evaluator; "
    "repeatable.  [rewards]",
)
@click.option("--system-prompt", help="System message put first.  [model.system_prompt]")
@click.option("--k", "k", callback=_k_list, help="pass@k for each k, e.g. 1,4,16.  [k]")
@click.option("--max-concurrency", type=click.IntRange(min=1), help="Requests in flight.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N rows.")
@click.option("--out", help="Run directory.  [out]")
@click.option("--seed", type=int, help="Run seed (each sample's seed derives from it).")
@click.option(
    "--cache",
    "cache_mode",
    type=click.Choice(["on", "off", "read", "refresh"]),
    help="Generation cache mode.  [cache.mode]",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override any config key (repeatable), e.g. --set model.temperature=0.7.",
)
@click.option(
    "--env",
    "env_name",
    help="Roll out in this served environment (multi-turn; docs/environments.md).  [env.name]",
)
@click.option("--env-url", help="The rk-serve serving --env.  [env.url]")
@click.option("--from", "from_manifest", type=click.Path(dir_okay=False), help="Repeat the run "
              "a manifest.json describes (its config; flags and --set still apply).")  # fmt: skip
@click.option("--resume", is_flag=True, help="Finish the run in --out: only unfinished samples.")
@click.option("--rescore", is_flag=True, help="Score the generations in --out again (no model).")
@click.option("--overwrite", is_flag=True, help="Replace the run in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary table.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout at the end.")
def run_command(
    config: str | None,
    data: str | None,
    model: str | None,
    base_url: str | None,
    api_key_env: str | None,
    samples: int | None,
    rewards: tuple[str, ...],
    system_prompt: str | None,
    k: str | None,
    max_concurrency: int | None,
    limit: int | None,
    out: str | None,
    seed: int | None,
    cache_mode: str | None,
    sets: tuple[str, ...],
    env_name: str | None,
    env_url: str | None,
    from_manifest: str | None,
    resume: bool,
    rescore: bool,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Generate replies to every prompt with a model, score them, and report.

    CONFIG is a TOML or YAML file (docs/run.md); flags and --set override its keys. Results go
    to --out: results.jsonl (a line per sample), summary.json and manifest.json.
    """
    for module in ("aiohttp", "rich"):
        # Looked up, not imported: a fully cached run never needs aiohttp (~0.1 s to import).
        if importlib.util.find_spec(module) is None:
            require(module, extra="run", feature="rk run")
    if config is not None and from_manifest is not None:
        raise click.UsageError("give CONFIG or --from MANIFEST, not both")
    if sum((resume, rescore, overwrite)) > 1:
        raise click.UsageError("choose one of --resume, --rescore and --overwrite")
    from ..run import arun

    cwd_importable()
    options: dict[str, Any] = {
        "data": data, "model": model, "base_url": base_url, "api_key_env": api_key_env,
        "system_prompt": system_prompt, "samples": samples, "rewards": list(rewards) or None,
        "k": k, "max_concurrency": max_concurrency, "limit": limit, "out": out, "seed": seed,
    }  # fmt: skip
    all_sets = list(sets)
    if cache_mode is not None:
        all_sets.insert(0, f"cache.mode={cache_mode}")
    if quiet:
        all_sets.insert(0, "output.progress=false")
    if env_name is not None:
        all_sets.insert(0, f"env.name={env_name}")
    if env_url is not None:
        all_sets.insert(0, f"env.url={env_url}")
    if from_manifest is not None and out is None:
        all_sets.insert(0, "out=null")  # a new run directory, not the recorded run's
    try:
        result = asyncio.run(
            arun(
                from_manifest or config,
                **options,
                set=all_sets,
                resume=resume,
                rescore=rescore,
                overwrite=overwrite,
                progress=not quiet,
                command=["rk", *sys.argv[2:]] if len(sys.argv) > 1 else ["rk", "run"],
            )
        )
    except KeyboardInterrupt:
        raise click.exceptions.Abort() from None
    if as_json:
        click.echo(json.dumps(result.summary, indent=2))


@click.group("cache")
def cache_group() -> None:
    """The generation cache rk run shares across runs."""


_PATH = click.option(
    "--path", help="Cache file. [default: $RK_CACHE_DIR/generations.sqlite3 or ~/.cache/...]"
)


@cache_group.command("stats")
@_PATH
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def cache_stats(path: str | None, as_json: bool) -> None:
    """How many generations are cached, per model, and the file's size."""
    from ..run import GenerationCache, default_cache_path

    file = path or str(default_cache_path())
    if not _exists(file):
        stats: dict[str, Any] = {"path": file, "entries": 0, "bytes": 0, "models": {}}
    else:
        cache = GenerationCache(file, mode="read")
        try:
            stats = cache.stats()
        finally:
            cache.close()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    click.echo(f"cache: {stats['path']}")
    click.echo(f"entries: {stats['entries']}  size: {stats['bytes'] / 1e6:.1f} MB")
    for model, count in stats["models"].items():
        click.echo(f"  {model}: {count}")


@cache_group.command("clear")
@_PATH
@click.option("--model", help="Only this model's entries.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(path: str | None, model: str | None, yes: bool) -> None:
    """Delete cached generations (all, or one model's)."""
    from ..run import GenerationCache, default_cache_path

    file = path or str(default_cache_path())
    if not _exists(file):
        click.echo(f"cache: {file} does not exist; nothing to clear")
        return
    what = f"{model}'s entries" if model else "every entry"
    if not yes and not click.confirm(f"delete {what} from {file}?", err=True):
        raise click.exceptions.Abort()
    cache = GenerationCache(file, mode="on")
    try:
        deleted = cache.clear(model=model)
    finally:
        cache.close()
    click.echo(f"deleted {deleted} entries from {file}")


def _exists(file: str) -> bool:
    from pathlib import Path

    path = Path(file).expanduser()
    if path.is_dir():
        raise ConfigurationError(f"--path {file!r} is a folder; give the cache file")
    return path.exists()
