"""``reward_kit.run(...)`` and ``await reward_kit.run.arun(...)``: one run from Python, the
same as ``rk run`` (which calls :func:`arun`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from ._config import RunConfig
from ._resolve import load_file, resolve_config

__all__ = ["RunResult", "arun", "build_config", "run"]

# Keys that change what a sample is: a resumed run must keep them, or its lines would mix two
# different runs.
_RESUME_KEYS = (
    "model.name",
    "model.system_prompt",
    "model.temperature",
    "model.top_p",
    "model.max_tokens",
    "model.stop",
    "model.tools",
    "model.tool_choice",
    "model.extra_body",
    "model.send_seed",
    "seed",
    "data.fields",
)


class RunResult:
    """What a run produced: ``summary`` (summary.json), ``manifest``, the run directory
    ``out``, and the result lines (iterate, or :meth:`samples`), read from results.jsonl."""

    def __init__(self, *, out: Path, summary: dict[str, Any], manifest: dict[str, Any]) -> None:
        self.out = out
        self.summary = summary
        self.manifest = manifest

    @property
    def results_path(self) -> Path:
        return self.out / "results.jsonl"

    def samples(self) -> Iterator[dict[str, Any]]:
        """Each result line (one per sample) as a dict, in the order they were written."""
        import json

        with self.results_path.open(encoding="utf-8") as file:
            for line in file:
                if line.strip():
                    yield json.loads(line)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.samples()

    def __repr__(self) -> str:
        return f"<RunResult {str(self.out)!r}: {self.summary.get('samples')} samples>"


def build_config(
    config: RunConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> RunConfig:
    """The run config from a file (TOML, YAML, a run's manifest.json), a mapping or a
    :class:`RunConfig`, with ``flags`` (dotted key -> value) and ``--set`` strings on top."""
    if isinstance(config, RunConfig):
        base: Mapping[str, Any] = config.model_dump(mode="json")
    elif isinstance(config, (str, Path)):
        base = load_file(config)
    else:
        base = config or {}
    return resolve_config(base, flags=flags, sets=sets)


def _shortcuts(**values: Any) -> dict[str, Any]:
    paths = {
        "data": "data.path",
        "model": "model.name",
        "base_url": "model.base_url",
        "api_key_env": "model.api_key_env",
        "system_prompt": "model.system_prompt",
        "samples": "samples",
        "rewards": "rewards",
        "k": "k",
        "max_concurrency": "limits.max_concurrency",
        "limit": "data.limit",
        "out": "out",
        "seed": "seed",
    }
    flags = {paths[name]: value for name, value in values.items() if value is not None}
    if isinstance(flags.get("rewards"), str):
        flags["rewards"] = [flags["rewards"]]
    if isinstance(flags.get("data.path"), Path) or isinstance(flags.get("out"), Path):
        flags = {k: str(v) if isinstance(v, Path) else v for k, v in flags.items()}
    return flags


async def arun(
    config: RunConfig | Mapping[str, Any] | str | Path | None = None,
    /,
    *,
    data: str | Path | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    system_prompt: str | None = None,
    samples: int | None = None,
    rewards: str | Sequence[str | Mapping[str, Any]] | None = None,
    k: int | str | Sequence[int] | None = None,
    max_concurrency: int | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    seed: int | None = None,
    set: Iterable[str] = (),
    resume: bool = False,
    rescore: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    console: Any = None,
    command: Sequence[str] | None = None,
) -> RunResult:
    """Generate, score and report one run; the async twin of :func:`run`.

    ``config`` is a TOML/YAML file, a run's manifest.json, a mapping or a :class:`RunConfig`;
    the keyword arguments override it like ``rk run``'s flags, then ``set`` (``"a.b=c"``
    strings) like ``--set``. ``resume``/``rescore`` with no ``config`` take the run
    directory's own manifest. ``progress=True`` shows the progress bar (on a terminal) and the
    summary table on stderr, or on ``console`` (a rich Console) when given. Returns a
    :class:`RunResult`; a fatal generation error (auth, not found) raises
    :class:`~reward_kit.GenerationError`.
    """
    from ._execute import execute

    if sum((resume, rescore, overwrite)) > 1:
        raise ConfigurationError("choose one of resume, rescore and overwrite")
    flags = _shortcuts(
        data=data, model=model, base_url=base_url, api_key_env=api_key_env,
        system_prompt=system_prompt, samples=samples, rewards=rewards, k=k,
        max_concurrency=max_concurrency, limit=limit, out=out, seed=seed,
    )  # fmt: skip
    sets = list(set)
    manifest_path = Path(str(flags["out"])) / "manifest.json" if "out" in flags else None
    if config is None and (resume or rescore):
        if manifest_path is None or not manifest_path.exists():
            raise ConfigurationError(
                f"--{'resume' if resume else 'rescore'} needs --out RUN_DIR with a manifest.json"
                " (or a config)"
            )
        config = manifest_path
    resolved = build_config(config, flags=flags, sets=sets)
    out_dir = Path(resolved.out) if resolved.out else _default_out(resolved)
    resolved = resolved.model_copy(update={"out": str(out_dir)})
    if resume and (out_dir / "manifest.json").exists():
        _check_resumable(resolved, out_dir / "manifest.json")
    expected = None
    if isinstance(config, (str, Path)) and str(config).endswith(".json"):
        expected = _manifest_dataset_hash(Path(config))
    mode = "resume" if resume else "rescore" if rescore else "overwrite" if overwrite else "new"
    summary, manifest = await execute(
        resolved,
        out=out_dir,
        mode=mode,
        progress=progress,
        console=console,
        command=command,
        expect_dataset_sha256=expected,
    )
    return RunResult(out=out_dir, summary=summary, manifest=manifest)


def run(
    config: RunConfig | Mapping[str, Any] | str | Path | None = None, /, **options: Any
) -> RunResult:
    """Generate, score and report one run, blocking; the same arguments as :func:`arun`.

    >>> result = reward_kit.run(data="prompts.jsonl", rewards=["rewards.py"],
    ...                         base_url="http://127.0.0.1:8000/v1", model="m")  # doctest: +SKIP
    >>> result.summary["rewards"]["exact_match"]["mean"]  # doctest: +SKIP
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(config, **options))
    # Called from a running loop (a notebook): run on a loop of its own in another thread.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(arun(config, **options))
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=target, name="rk-run")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


def _default_out(config: RunConfig) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", config.model.name).strip("-")[:40] or "model"
    return Path("runs") / f"{stamp}-{slug}"


def _get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _check_resumable(config: RunConfig, manifest_path: Path) -> None:
    import json

    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(manifest_path.read_text()).get("config") or {}
        current = config.model_dump(mode="json")
        changed = [k for k in _RESUME_KEYS if _get(saved, k) != _get(current, k)]
        if changed:
            details = "; ".join(
                f"{k}: {_get(saved, k)!r} in the run, {_get(current, k)!r} now" for k in changed
            )
            raise ConfigurationError(
                f"--resume: config key {changed[0]!r} differs from the run being resumed "
                f"({details}); resume with the run's own config (omit CONFIG), or start a new "
                "run with another --out"
            )


def _manifest_dataset_hash(path: Path) -> str | None:
    import json

    with contextlib.suppress(OSError, ValueError, AttributeError):
        data = json.loads(path.read_text())
        return str(data["dataset"]["sha256"]) if "dataset" in data else None
    return None
