"""A remote reward-kit environment as a TRL ``environment_factory`` class.

TRL builds one instance per rollout, calls ``reset(**row)`` before generating, exposes every
public method of the *class* as a tool (schema from type hints and a Google-style docstring,
via ``transformers.utils.get_json_schema``), and calls ``get_reward()`` once the rollout is
done. So the class must carry one real method per server tool: it is built from the server's
schemas when :func:`remote_environment` is called. AsyncGRPO pickles the factory into another
process; the class pickles as its plain-data spec (URL, env, credentials, tool schemas) and is
rebuilt there without a request, and HTTP clients are created lazily in each process.
"""

from __future__ import annotations

import copyreg
import hashlib
import inspect
import keyword
import logging
import os
import threading
import types
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx

from .._errors import ConfigurationError, RewardKitError
from ._core import DEFAULT_TIMEOUT, ClientConfig, dumps
from ._env_client import EnvClient, EnvSession, env_config

__all__ = ["RemoteEnvironment", "remote_environment"]

logger = logging.getLogger("reward_kit.sdk")

_RESERVED = frozenset({"reset", "get_reward"})
_BASIC: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
# Answers that mean "this session cannot be scored" (gone, over, expired), not "the server is
# broken": the rollout becomes unscorable (None) instead of stopping the training run.
_UNSCORABLE = frozenset({404, 409, 410})


@dataclass(frozen=True, kw_only=True)
class _Spec:
    config: ClientConfig
    env: str
    tools: tuple[Mapping[str, Any], ...]
    token: str  # identifies the class across pickling, so one process builds it once


_classes: dict[str, type[RemoteEnvironment]] = {}
_clients: dict[tuple[str, int], EnvClient] = {}
_lock = threading.Lock()


class _RemoteEnvironmentType(type):
    """The metaclass, so that copyreg can pickle generated classes by their spec."""

    _spec: _Spec


class RemoteEnvironment(metaclass=_RemoteEnvironmentType):
    """Base of the classes :func:`remote_environment` returns: one rollout's session.

    ``reset(**row)`` closes any session this (pooled) instance still holds and opens a new one:
    ``task``, ``seed`` and ``group_id`` come from the row when it has them; otherwise the
    group is a hash of the row, so the generations of one GRPO group (the same row repeated)
    start from the same state. ``get_reward()`` evaluates the session and closes it.
    ``rewards`` lists the per-tool-call rewards of the current rollout.
    """

    _spec: ClassVar[_Spec]

    def __init__(self) -> None:
        self._session: EnvSession | None = None
        self.rewards: list[float] = []
        self.done = False

    def reset(self, **row: Any) -> str:
        """Open a session for this rollout; its first observation is appended to the prompt."""
        self._close()
        self.rewards, self.done = [], False
        group_id = row.get("group_id")
        if group_id is None and row.get("seed") is None:
            group_id = _group_of(row)
        self._session = _client(self._spec).session(
            self._spec.env, task=row.get("task"), seed=row.get("seed"), group_id=group_id
        )
        observation = self._session.observation
        return "\n\n" + observation if observation else ""

    def get_reward(self) -> float | None:
        """Evaluate this rollout's session (the environment's score), then close it. A session
        the server no longer has or that failed, or a score marked invalid, gives None: TRL
        leaves the rollout out of its group rather than count a 0."""
        session = self._session
        if session is None:
            raise RuntimeError("get_reward() before reset(): no session to evaluate")
        try:
            result = session.evaluate()
        except RewardKitError as error:
            if error.status not in _UNSCORABLE:
                raise
            logger.warning("reward-kit: session %s is unscorable: %s", session.session_id, error)
            return None
        finally:
            self._close()
        return result.score if result.is_score_valid else None

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        session = self._session
        if session is None:
            raise RuntimeError(f"tool {name!r} called before reset()")
        if self.done:
            return "The episode is over: no more tool calls are accepted."
        result = session.step([(name, arguments)]).results[0]
        self.rewards.append(result.reward)
        self.done = session.done
        return result.content if result.status == "ok" else f"{result.status}: {result.content}"

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()


def remote_environment(
    url: str | None,
    env: str,
    *,
    auth: httpx.Auth | str | Literal[False] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = 5,
    headers: Mapping[str, str] | None = None,
) -> type[RemoteEnvironment]:
    """A class for ``GRPOTrainer(environment_factory=...)`` that runs each rollout in a session
    of environment ``env`` on the reward-kit server at ``url`` (credentials as for
    ``EvaluatorClient``). The server's tools become its methods, so they are fetched now.

    >>> Env = remote_environment(url, "guess_number", auth=key)  # doctest: +SKIP
    >>> GRPOTrainer(model=..., environment_factory=Env, train_dataset=ds).train()  # doctest: +SKIP
    """
    config = env_config(url, auth=auth, timeout=timeout, max_retries=max_retries, headers=headers)
    with EnvClient.from_config(config) as client:
        described = client.describe(env)
    tools = tuple(_function_of(tool) for tool in described.get("tools") or [])
    return _build(_Spec(config=config, env=env, tools=tools, token=uuid.uuid4().hex))


def _build(spec: _Spec) -> type[RemoteEnvironment]:
    with _lock:
        known = _classes.get(spec.token)
        if known is not None:
            return known
        namespace: dict[str, Any] = {"_spec": spec, "__module__": __name__}
        for tool in spec.tools:
            namespace[tool["name"]] = _method(tool)
        name = "".join(part.title() for part in spec.env.replace("-", "_").split("_"))
        cls: type[RemoteEnvironment] = _RemoteEnvironmentType(  # type: ignore[assignment]
            (name if name.isidentifier() else "Remote") + "Environment",
            (RemoteEnvironment,),
            namespace,
        )
        _classes[spec.token] = cls
        return cls


def _reduce_class(cls: _RemoteEnvironmentType) -> Any:
    if cls is RemoteEnvironment:
        return "RemoteEnvironment"  # the base class pickles by reference, as any class does
    return (_build, (cls._spec,))


copyreg.pickle(_RemoteEnvironmentType, _reduce_class)


def _client(spec: _Spec) -> EnvClient:
    key = (spec.token, os.getpid())  # a forked process must not share the parent's sockets
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = EnvClient.from_config(spec.config)
        return client


def _group_of(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(dumps(_stable(row))).hexdigest()[:32]


def _stable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _stable(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)  # images and other objects: stable enough to tell rows apart


def _function_of(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    function = tool.get("function", tool)
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ConfigurationError(f"tools: {name!r} cannot be a Python method name")
    if name in _RESERVED or name.startswith("_"):
        raise ConfigurationError(
            f"tools: a tool named {name!r} would clash with the TRL environment protocol"
        )
    return dict(function)


def _method(function: Mapping[str, Any]) -> Callable[..., str]:
    name: str = function["name"]
    parameters = function.get("parameters") or {}
    properties: Mapping[str, Any] = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    lines = [_one_line(function.get("description")) or f"Call the {name} tool."]
    if properties:
        lines += ["", "Args:"]
    for arg, schema in properties.items():
        if not arg.isidentifier() or keyword.iskeyword(arg):
            raise ConfigurationError(f"tools: {name}: argument {arg!r} is not a Python name")
        hint: Any = _hint(schema)
        default: Any = inspect.Parameter.empty
        if arg not in required:
            hint, default = hint | None, None
        annotations[arg] = hint
        signature.append(
            inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
        )
        lines.append(f"    {arg}: {_one_line(schema.get('description')) or arg}")
    annotations["return"] = str

    def method(self: RemoteEnvironment, **arguments: Any) -> str:
        sent = {k: v for k, v in arguments.items() if v is not None or k in required}
        return self._call(name, sent)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = "\n".join(lines)
    method.__annotations__ = annotations
    setattr(method, "__signature__", inspect.Signature(signature, return_annotation=str))  # noqa: B010
    return method


def _hint(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return Any
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, (str, int)) for v in enum):
        return Literal[tuple(enum)]
    kind = schema.get("type")
    if kind in _BASIC:
        return _BASIC[kind]
    if kind == "array":
        items = schema.get("items")
        return (
            types.GenericAlias(list, (_hint(items),))
            if isinstance(items, Mapping) and items
            else list
        )
    if kind == "object":
        return dict
    return Any  # a union or no type: the schema says nothing TRL could render more exactly


def _one_line(text: Any) -> str:
    return " ".join(str(text).split()) if text else ""
