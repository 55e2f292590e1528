"""The authoring API: :class:`Environment`, the :func:`tool` decorator and :class:`ToolResult`.

A tool's schema (OpenAI function format) comes from its type hints and docstring; its
arguments are checked with a pydantic model built from the same signature, so a call with bad
arguments becomes an ``invalid`` result the model can read, never an exception in the server.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

if TYPE_CHECKING:
    from .._models import EvaluateResult
    from ._ledger import Trajectory

__all__ = ["Environment", "Tool", "ToolResult", "tool"]

F = TypeVar("F", bound=Callable[..., Any])
_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^\s*(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True, kw_only=True)
class ToolResult:
    """What a tool returns: the text the model sees, a reward for this call, and whether the
    episode is over. A tool may also return a plain string (reward 0, not done).

    >>> ToolResult(content="higher").done
    False
    """

    content: str
    reward: float = 0.0
    done: bool = False


class Tool:
    """A method marked with :func:`tool`: its schema and its argument model."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.name = function.__name__
        summary, described = _docstring(function)
        self.description = summary
        self.arguments = _argument_model(function, described)

    def schema(self) -> dict[str, Any]:
        """The tool in OpenAI function format (what a chat template's ``tools=`` takes)."""
        parameters = _strip_titles(self.arguments.model_json_schema())
        parameters.pop("additionalProperties", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The checked arguments; raises ValueError naming each bad field."""
        try:
            model = self.arguments.model_validate(arguments)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in error.errors()
            )
            raise ValueError(f"invalid arguments for {self.name}: {problems}") from None
        return {name: getattr(model, name) for name in type(model).model_fields}


def tool(function: F) -> F:
    """Mark an :class:`Environment` method as a tool the model may call.

    >>> class Counter(Environment):
    ...     def reset(self, *, task=None, seed=None):
    ...         self.count = 0
    ...         return "count with add"
    ...     @tool
    ...     def add(self, n: int = 1) -> ToolResult:
    ...         '''Add to the counter.
    ...
    ...         Args:
    ...             n: how much to add.
    ...         '''
    ...         self.count += n
    ...         return ToolResult(content=str(self.count))
    >>> Counter.tools()["add"].schema()["function"]["parameters"]["properties"]["n"]
    {'default': 1, 'description': 'how much to add.', 'type': 'integer'}
    """
    function.__rk_tool__ = True  # type: ignore[attr-defined]
    return function


class Environment:
    """A multi-step environment: one instance per session, in the session's own process.

    Class attributes: ``name`` (the route name; the class name in snake_case by default),
    ``max_steps`` (then the session is truncated) and ``step_timeout`` (seconds one tool call
    may take before the session's process is killed). ``state()`` is what is hashed after
    each step and handed to reward functions; by default the instance's attributes.
    """

    name: ClassVar[str] = ""
    max_steps: ClassVar[int] = 32
    step_timeout: ClassVar[float] = 30.0
    __rk_environment__: ClassVar[bool] = True
    _tools: ClassVar[dict[str, Tool]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__ or not cls.name:
            cls.name = _snake(cls.__name__)
        if not (isinstance(cls.max_steps, int) and cls.max_steps >= 1):
            raise TypeError(f"{cls.__name__}.max_steps must be an integer >= 1")
        if not (isinstance(cls.step_timeout, (int, float)) and cls.step_timeout > 0):
            raise TypeError(f"{cls.__name__}.step_timeout must be a positive number of seconds")
        found: dict[str, Tool] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if callable(value) and getattr(value, "__rk_tool__", False):
                    found[attr] = Tool(value)
        cls._tools = found

    def reset(self, *, task: Any = None, seed: int | None = None) -> str:
        """Start an episode; returns the first observation."""
        raise NotImplementedError(f"{type(self).__name__} must define reset()")

    def state(self) -> Any:
        """The environment's state as JSON-able data (hashed after each step)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def score(self, trajectory: Trajectory) -> EvaluateResult | float:
        """The trajectory's score; by default the sum of its step rewards."""
        return trajectory.default_result()

    @classmethod
    def tools(cls) -> dict[str, Tool]:
        """The tools by name."""
        return dict(cls._tools)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Name, description, limits and tool schemas (what ``GET /envs/{env}`` shows)."""
        return {
            "name": cls.name,
            "description": inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0],
            "max_steps": cls.max_steps,
            "step_timeout": float(cls.step_timeout),
            "custom_score": cls.score is not Environment.score,
            "tools": [t.schema() for t in cls._tools.values()],
        }


Environment._tools = {}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _docstring(function: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The summary (text before ``Args:``) and each argument's description."""
    text = inspect.cleandoc(function.__doc__ or "")
    summary: list[str] = []
    described: dict[str, str] = {}
    current = None
    in_args = False
    for line in text.splitlines():
        if _ARGS_HEADER.match(line):
            in_args = True
            continue
        if in_args:
            match = _ARG_LINE.match(line)
            if match:
                current = match.group(1)
                described[current] = match.group(3).strip()
            elif current and line.strip():
                described[current] += " " + line.strip()
            elif not line.strip() and described:
                in_args = False
        else:
            summary.append(line)
    return "\n".join(summary).strip(), described


def _argument_model(function: Callable[..., Any], described: dict[str, str]) -> type[BaseModel]:
    from pydantic import Field

    signature = inspect.signature(function)
    hints = get_type_hints(function)
    fields: dict[str, Any] = {}
    for index, (name, parameter) in enumerate(signature.parameters.items()):
        if index == 0:
            continue  # self
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"tool {function.__name__}: *args/**kwargs cannot be described")
        annotation = hints.get(name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (annotation, Field(default, description=described.get(name)))
    return create_model(
        f"{function.__name__}_arguments",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema
