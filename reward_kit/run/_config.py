"""The configuration of one ``rk run``: pydantic models, read from TOML or YAML, overridden by
flags and ``--set a.b=c``. Every key is documented here once; docs/run.md's reference table is
generated from these models (``python -m reward_kit.run._docs docs/run.md``).

Secrets never appear in a config: an API key is named by the environment variable holding it
(``model.api_key_env``), so a config and the manifest that records it are safe to share.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CacheConfig",
    "CacheMode",
    "DataConfig",
    "EnvConfig",
    "FieldMap",
    "LimitsConfig",
    "ModelConfig",
    "OutputConfig",
    "RewardSpec",
    "RunConfig",
    "ScoringConfig",
]

CacheMode = Literal["on", "off", "read", "refresh"]
DataFormat = Literal["auto", "jsonl", "json", "csv", "parquet", "arrow", "disk"]


class _Section(BaseModel):
    # A misspelt key is an error naming it, never silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class FieldMap(_Section):
    """Which dataset column holds each field (for datasets whose columns are named otherwise)."""

    id: str = Field(
        default="id", description="Column with the row's stable id (else a content hash)."
    )
    prompt: str = Field(default="prompt", description="Column with a user prompt (a string).")
    messages: str = Field(
        default="messages", description="Column with a chat (a list of messages)."
    )
    ground_truth: str = Field(
        default="ground_truth", description="Column passed as `ground_truth`."
    )


class DataConfig(_Section):
    """The prompts: one row per prompt."""

    path: str | None = Field(
        default=None, description="JSONL file, or any file or folder `datasets` reads."
    )
    format: DataFormat = Field(
        default="auto",
        description="`jsonl`, `json`, `csv`, `parquet`, `arrow`, `disk` (`load_from_disk`); "
        "`auto` goes by the suffix.",
    )
    split: str | None = Field(
        default=None, description="Split of a `datasets` dataset (default: the first)."
    )
    limit: int | None = Field(default=None, ge=1, description="Use only the first N rows.")
    fields: FieldMap = Field(default_factory=FieldMap, description="Column names.")


class ModelConfig(_Section):
    """The OpenAI-compatible chat-completions endpoint and how to sample from it."""

    name: str = Field(
        default="local:smollm2",
        description="Model name sent to the endpoint; `local:smollm2` starts a local llama.cpp "
        "server (`reward-kit[local-model]`) when `base_url` is not set.",
    )
    base_url: str | None = Field(
        default=None, description="Endpoint base URL, e.g. `https://api.openai.com/v1`."
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the API key (never the key itself)."
    )
    system_prompt: str | None = Field(
        default=None, description="Put first as a system message (unless a row has its own)."
    )
    temperature: float | None = Field(default=None, ge=0, description="Sampling temperature.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens per reply.")
    stop: list[str] | None = Field(default=None, description="Stop sequences.")
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="Tool definitions sent with every request (a row's `tools` win)."
    )
    tool_choice: str | dict[str, Any] | None = Field(default=None, description="Sent as is.")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="More request fields, sent as is (part of the cache key)."
    )
    send_seed: bool = Field(
        default=True,
        description="Send each sample's seed (turn off for servers that reject `seed`).",
    )
    use_n: bool = Field(
        default=False,
        description="Ask for a prompt's samples in one request with `n` (servers that honour "
        "it); missing choices are requested one by one.",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or not value.replace("_", "a").isalnum()):
            raise ValueError(
                "must be the name of an environment variable (letters, digits, '_'), not a key"
            )
        return value


class LimitsConfig(_Section):
    """Throughput controls and retries for the model endpoint."""

    max_concurrency: int = Field(default=32, ge=1, description="Requests in flight at once.")
    rpm: float | None = Field(default=None, gt=0, description="Requests per minute (token bucket).")
    tpm: float | None = Field(
        default=None,
        gt=0,
        description="Tokens per minute (prompt estimate + `max_tokens`, then actual).",
    )
    timeout: float = Field(default=120.0, gt=0, description="Seconds per attempt.")
    max_attempts: int = Field(default=6, ge=1, description="Attempts per request (1 = no retry).")
    backoff_base: float = Field(
        default=1.0, gt=0, description="First backoff in seconds (doubles)."
    )
    backoff_max: float = Field(default=60.0, gt=0, description="Longest backoff in seconds.")
    max_retry_after: float = Field(
        default=300.0,
        gt=0,
        description="Longest `Retry-After` honoured; longer ones fail the sample.",
    )


class CacheConfig(_Section):
    """The generation cache (SQLite, JSON values, shared by every run on the machine)."""

    mode: CacheMode = Field(
        default="on", description="`on`, `off`, `read` (never write) or `refresh` (never read)."
    )
    path: str | None = Field(
        default=None,
        description="Cache file. Default: `$RK_CACHE_DIR/generations.sqlite3`, else under "
        "`$XDG_CACHE_HOME` or `~/.cache/reward-kit/`.",
    )
    namespace: str = Field(
        default="", description="Part of every key: a new namespace is a fresh set of samples."
    )


class RewardSpec(_Section):
    """One reward: a target loaded as rk-serve does, or a served evaluator's function."""

    target: str | None = Field(
        default=None,
        description="`file.py` (all its reward functions), `file.py:fn`, `pkg.mod:fn`.",
    )
    url: str | None = Field(default=None, description="A served evaluator's base URL (rk-serve).")
    function: str | None = Field(default=None, description="With `url`: the function to call.")
    api_key_env: str | None = Field(
        default=None,
        description="With `url`: environment variable holding the evaluator's API key.",
    )
    pass_threshold: float | None = Field(
        default=None,
        description="A sample passes at this score or above (default `scoring.pass_threshold`).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> RewardSpec:
        if (self.target is None) == (self.url is None):
            raise ValueError("give exactly one of 'target' or 'url' (with 'function')")
        if self.url is not None and not self.function:
            raise ValueError("'url' needs 'function' (the served function to call)")
        if self.target is not None and (self.function or self.api_key_env):
            raise ValueError("'function' and 'api_key_env' go with 'url', not 'target'")
        return self

    @classmethod
    def parse(cls, text: str) -> RewardSpec:
        """A ``--reward`` value: ``TARGET`` or ``URL#FUNCTION``."""
        if text.startswith(("http://", "https://")):
            url, _, function = text.partition("#")
            return cls(url=url.rstrip("/"), function=function or None)
        return cls(target=text)

    @property
    def label(self) -> str:
        return self.target or f"{self.url}#{self.function}"


class ScoringConfig(_Section):
    """How rewards run: the engine's killable workers and deadlines."""

    workers: int | None = Field(
        default=None, ge=0, description="Worker processes (default: one per core)."
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        description="Deadline per item in seconds (default: the function's, else 30).",
    )
    memory_limit_mb: int | None = Field(
        default=None, ge=0, description="Address-space limit per worker."
    )
    pass_threshold: float = Field(
        default=1.0, description="A sample passes pass@k at this score or above."
    )


class OutputConfig(_Section):
    """The run directory's files."""

    fsync: Literal["close", "always"] = Field(
        default="close",
        description="`close`: results reach the OS a few times a second (a kill -9 loses at "
        "most that) and are fsynced at the end; `always`: fsynced at every write too "
        "(survives a machine crash).",
    )
    progress: bool = Field(
        default=True, description="A progress bar on stderr (when it is a terminal)."
    )


class EnvConfig(_Section):
    """A served multi-step environment to roll the model out in (docs/environments.md)."""

    name: str | None = Field(
        default=None,
        description="Environment to play (`--env`): each sample is a session; the model's "
        "tool calls go to it until it is done; its evaluation is the reward named after it.",
    )
    url: str | None = Field(
        default=None, description="The rk-serve serving it (`--env-url`; else `RK_EVALUATOR_URL`)."
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding that server's API key."
    )
    max_turns: int = Field(
        default=64, ge=1, description="Most model turns per rollout (the env's `max_steps` "
        "usually ends it first).",
    )  # fmt: skip

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return ModelConfig._env_name(value)


class RunConfig(_Section):
    """Everything one run is: data, model, samples, rewards, limits, cache, output."""

    data: DataConfig = Field(default_factory=DataConfig, description="The prompts.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The endpoint.")
    samples: int = Field(default=1, ge=1, description="Samples per prompt (n).")
    seed: int = Field(default=0, description="Run seed; each sample's seed derives from it.")
    k: list[int] = Field(
        default_factory=lambda: [1], description="pass@k for each k (`--k 1,4,16`)."
    )
    rewards: list[RewardSpec] = Field(default_factory=list, description="Reward functions.")
    scoring: ScoringConfig = Field(default_factory=ScoringConfig, description="Scoring.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="Throughput.")
    cache: CacheConfig = Field(default_factory=CacheConfig, description="Caching.")
    env: EnvConfig = Field(default_factory=EnvConfig, description="Multi-turn rollouts.")
    out: str | None = Field(
        default=None, description="Run directory (default `runs/<time>-<model>`)."
    )
    output: OutputConfig = Field(default_factory=OutputConfig, description="Output files.")

    @field_validator("k", mode="before")
    @classmethod
    def _ks(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return [int(part) for part in value.replace(" ", "").split(",") if part]
            except ValueError:
                raise ValueError("must be integers separated by commas, e.g. 1,4,16") from None
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("k")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError("each k must be a positive integer")
        return sorted(set(value))

    @field_validator("rewards", mode="before")
    @classmethod
    def _reward_strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [RewardSpec.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _finite(self) -> RunConfig:
        for name in ("temperature", "top_p"):
            value = getattr(self.model, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"model.{name} must be finite")
        return self
