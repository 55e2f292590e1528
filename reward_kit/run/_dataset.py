"""The prompts of a run: JSONL rows, or anything ``datasets`` loads locally (an extra).

A row is ``{"id", "prompt" | "messages", "ground_truth", ...}``; every other field reaches the
rewards as a keyword argument, as in ``rk eval``. A prompt's id is the row's id, else a content
hash of the row (sha256 of its canonical JSON): stable across processes and machines, unlike
Python's salted ``hash()``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from .._extras import require
from .._vocabulary import RESERVED_ITEM_KEYS
from ._config import DataConfig

__all__ = ["Dataset", "Prompt", "canonical_json", "load_dataset"]

_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Prompt:
    """One prompt: its id, the messages sent to the model (system prompt applied), and what
    the rewards get besides the reply."""

    id: str
    messages: list[dict[str, Any]]
    ground_truth: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    tools: list[Any] | None = None


@dataclass(frozen=True)
class Dataset:
    """The prompts, with the source's content hash (for the manifest)."""

    prompts: list[Prompt]
    path: str
    format: str
    sha256: str
    rows: int


def load_dataset(config: DataConfig, *, system_prompt: str | None = None) -> Dataset:
    """Read, validate and map every row; a bad row is an error naming it (nothing runs)."""
    if not config.path:
        raise ConfigurationError("config key 'data.path': no dataset given (--data FILE)")
    path = Path(config.path).expanduser()
    if not path.exists():
        raise ConfigurationError(f"config key 'data.path': no such file or folder {str(path)!r}")
    fmt = _format(config, path)
    rows = _jsonl(path, config.limit) if fmt == "jsonl" else _hf_rows(path, fmt, config)
    prompts: list[Prompt] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        prompt = _prompt(row, where, config, system_prompt)
        if prompt.id in seen:
            if config.fields.id in row:
                raise ConfigurationError(
                    f"data {where}: id {prompt.id!r} is also the id of {seen[prompt.id]}; "
                    "prompt ids must be unique"
                )
            # Identical rows without ids: number the repeats so each keeps its own samples.
            repeat = 2
            while f"{prompt.id}-{repeat}" in seen:
                repeat += 1
            prompt = Prompt(
                f"{prompt.id}-{repeat}",
                prompt.messages,
                prompt.ground_truth,
                prompt.kwargs,
                prompt.tools,
            )
        seen[prompt.id] = where
        prompts.append(prompt)
    if not prompts:
        raise ConfigurationError(f"config key 'data.path': {str(path)!r} has no rows")
    return Dataset(prompts, str(path), fmt, content_hash(path), len(prompts))


def content_hash(path: Path) -> str:
    """sha256 of a file's bytes; of a folder, over its files' relative paths and hashes."""
    if path.is_file():
        return _file_hash(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{_file_hash(file)}\n".encode())
    return digest.hexdigest()


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _format(config: DataConfig, path: Path) -> str:
    if config.format != "auto":
        return config.format
    if path.is_dir():
        return "disk"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ConfigurationError(
            f"config key 'data.format': cannot tell the format of {str(path)!r} from its "
            f"suffix; set it to one of jsonl, json, csv, parquet, arrow, disk"
        )
    return fmt


def _jsonl(path: Path, limit: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
    count = 0
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            if limit is not None and count >= limit:
                return
            try:
                row = json.loads(line)
            except ValueError as error:
                raise ConfigurationError(f"data line {number}: not valid JSON: {error}") from None
            if not isinstance(row, dict):
                raise ConfigurationError(
                    f"data line {number}: expected a JSON object, got {type(row).__name__}"
                )
            count += 1
            yield f"line {number}", row


def _hf_rows(path: Path, fmt: str, config: DataConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    datasets = require("datasets", extra="datasets", feature=f"rk run with {fmt} data")
    if fmt == "disk":
        loaded: Any = datasets.load_from_disk(str(path))
    else:
        builder = {"arrow": "arrow", "json": "json", "csv": "csv", "parquet": "parquet"}[fmt]
        loaded = datasets.load_dataset(builder, data_files=str(path))
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        split = config.split or splits[0]
        if split not in loaded:
            raise ConfigurationError(
                f"config key 'data.split': no split {split!r} (the dataset has: "
                f"{', '.join(splits)})"
            )
        loaded = loaded[split]
    count = len(loaded) if config.limit is None else min(config.limit, len(loaded))
    for index in range(count):
        yield f"row {index}", dict(loaded[index])


def _prompt(
    row: dict[str, Any], where: str, config: DataConfig, system_prompt: str | None
) -> Prompt:
    names = config.fields
    if names.messages in row and row[names.messages] is not None:
        messages = _messages(row[names.messages], where, names.messages)
    elif names.prompt in row and row[names.prompt] is not None:
        text = row[names.prompt]
        if not isinstance(text, str):
            raise ConfigurationError(
                f"data {where}: {names.prompt!r} must be a string, got {type(text).__name__}"
            )
        messages = [{"role": "user", "content": text}]
    else:
        raise ConfigurationError(
            f"data {where}: needs {names.prompt!r} (a string) or {names.messages!r} (a list "
            f"of messages); map other columns with data.fields"
        )
    if system_prompt is not None and messages[0].get("role") != "system":
        messages = [{"role": "system", "content": system_prompt}, *messages]
    raw_id = row.get(names.id)
    if raw_id is None:
        prompt_id = hashlib.sha256(canonical_json(row).encode()).hexdigest()[:16]
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        prompt_id = str(raw_id)
    else:
        raise ConfigurationError(
            f"data {where}: {names.id!r} must be a string or an integer, "
            f"got {type(raw_id).__name__}"
        )
    mapped = {names.id, names.prompt, names.messages, names.ground_truth}
    kwargs = dict(row.get("kwargs") or {})
    kwargs.update((k, v) for k, v in row.items() if k not in mapped and k not in RESERVED_ITEM_KEYS)
    tools = row.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise ConfigurationError(f"data {where}: 'tools' must be a list of tool definitions")
    return Prompt(prompt_id, messages, row.get(names.ground_truth), kwargs, tools)


def _messages(value: Any, where: str, key: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ConfigurationError(f"data {where}: {key!r} must be a non-empty list of messages")
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ConfigurationError(f"data {where}: {key}.{index} must be an object with a 'role'")
    return [dict(m) for m in value]
