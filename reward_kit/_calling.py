"""How a reward function is called: which arguments it gets, and how its return is coerced."""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_json

from ._errors import InvalidRequest
from ._models import EvaluateResult, Message

__all__ = [
    "CallSignature",
    "coerce_batch_result",
    "coerce_messages",
    "coerce_result",
    "format_validation_error",
    "messages_in_bulk",
    "result_bytes",
    "result_json",
]

_MESSAGES = TypeAdapter(list[Message])
_MESSAGE_LISTS = TypeAdapter(list[list[Message]])


@dataclass(frozen=True)
class CallSignature:
    """What a function accepts, read once at decoration time."""

    accepted: frozenset[str]
    var_keyword: bool
    # ``ground_truth`` is annotated ``List[Message]`` (or Optional of it): coerce it like
    # ``messages`` (as upstream reward-kit does).
    ground_truth_messages: bool = False

    @classmethod
    def of(cls, func: Callable[..., Any], qualname: str) -> CallSignature:
        params = list(inspect.signature(func).parameters.values())
        positional = [
            p
            for p in params
            if p.kind
            in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.VAR_POSITIONAL,
            )
        ]
        if not positional:
            raise TypeError(
                f"reward function {qualname!r} must take the messages as its first "
                "positional parameter, e.g. def f(messages, ground_truth=None, **kwargs)"
            )
        first = positional[0]
        accepted = frozenset(
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p is not first
        )
        var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        truth = next((p for p in params if p.name == "ground_truth" and p.name in accepted), None)
        return cls(
            accepted=accepted,
            var_keyword=var_keyword,
            ground_truth_messages=truth is not None and _is_message_list(_hint(func, truth)),
        )

    def accepts(self, name: str) -> bool:
        return self.var_keyword or name in self.accepted

    def ground_truth(self, value: Any) -> tuple[bool, Any]:
        """Whether to pass ``ground_truth``, and as what.

        A function that names it always gets it; one with only ``**kwargs`` gets it only when
        there is one, so ``kwargs`` holds just what the caller gave and can be forwarded.
        """
        if "ground_truth" not in self.accepted and not (self.var_keyword and value is not None):
            return False, None
        if self.ground_truth_messages and value is not None:
            value = coerce_messages(value, "ground_truth")
        return True, value

    def select(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Keep only the keyword arguments the function names (all of them with ``**kwargs``)."""
        if self.var_keyword:
            return dict(kwargs)
        return {k: v for k, v in kwargs.items() if k in self.accepted}


def _hint(func: Callable[..., Any], param: inspect.Parameter) -> Any:
    """The parameter's annotation, resolved when it is a string (``from __future__ import
    annotations``); an unresolvable one is left as the string (and so coerces nothing)."""
    if not isinstance(param.annotation, str):
        return param.annotation
    try:
        return typing.get_type_hints(func).get(param.name, param.annotation)
    except Exception:  # NameError, TypeError...: whatever the annotation's code raises
        return param.annotation


def _is_message_list(annotation: Any) -> bool:
    """``List[Message]``, ``list[Message]`` or ``Sequence[Message]``, optionally ``| None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(arms) == 1 and _is_message_list(arms[0])
    return typing.get_origin(annotation) in (list, Sequence) and typing.get_args(annotation) == (
        Message,
    )


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``field.path: what was expected``."""
    lines = []
    for problem in error.errors(include_url=False):
        loc = ".".join(str(part) for part in (prefix, *problem["loc"]) if part != "")
        lines.append(f"{loc or '(body)'}: {problem['msg']}")
    return "; ".join(lines)


def coerce_messages(messages: Any, field: str = "messages") -> list[Message]:
    """Turn dicts, Messages or other packages' message objects into ``list[Message]``.

    Any pydantic model (upstream reward-kit's ``Message``, OpenAI's ``ChatCompletionMessage``)
    or dataclass of the chat-message shape is read as the dict it dumps to; a bad one is
    reported with its field, like a bad dict.
    """
    if isinstance(messages, list) and all(isinstance(m, Message) for m in messages):
        return messages
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise InvalidRequest(f"{field}: expected a list of messages, got {type(messages).__name__}")
    try:
        return _MESSAGES.validate_python([_as_message_input(m) for m in messages])
    except ValidationError as error:
        raise InvalidRequest(format_validation_error(error, field)) from None


def messages_in_bulk(lists: Sequence[Any]) -> list[list[Message]] | None:
    """What :func:`coerce_messages` makes of each list of message dicts, in one validation
    (1.5 us an item where one call per item takes 3), or None when any of them is invalid:
    each then goes through :func:`coerce_messages`, for its own error."""
    try:
        return _MESSAGE_LISTS.validate_python(lists)
    except ValidationError:
        return None


def _as_message_input(message: Any) -> Any:
    """What pydantic can validate as a Message: dicts and Messages as they are, else a dump."""
    if isinstance(message, (dict, Message)):
        return message
    if isinstance(message, BaseModel):
        # exclude_unset: a foreign model's None defaults must not override Message's defaults.
        return message.model_dump(exclude_unset=True)
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        return dataclasses.asdict(message)
    return message


def coerce_result(value: Any, function: str) -> EvaluateResult:
    """Accept an EvaluateResult, a dict of its shape, or a number/bool (the score)."""
    if isinstance(value, EvaluateResult):
        if _finite_scores(value):
            return value
        # Set after validation (``result.score = nan``) or built with model_construct: checked
        # again, so a NaN never travels as a valid null.
        try:
            return EvaluateResult.model_validate(value.model_dump())
        except ValidationError as error:
            raise ValueError(
                f"reward function {function!r} returned an invalid result: "
                f"{format_validation_error(error)}"
            ) from None
    if isinstance(value, bool):
        return EvaluateResult(score=1.0 if value else 0.0)
    if isinstance(value, numbers.Real):
        try:
            return EvaluateResult(score=float(value))
        except ValidationError as error:
            raise ValueError(
                f"reward function {function!r} returned an invalid score: "
                f"{format_validation_error(error)}"
            ) from None
    kind = "a dict"
    if hasattr(value, "model_dump") and not isinstance(value, Mapping):
        # An EvaluateResult from another package (e.g. the original reward-kit) of the same shape.
        kind = f"a {type(value).__name__}"
        value = value.model_dump()
    if isinstance(value, Mapping):
        try:
            return EvaluateResult.model_validate(dict(value))
        except ValidationError as error:
            # A wrong shape is a wrong type of return value, like a str: a TypeError, naming
            # the field and what it expected.
            raise TypeError(
                f"reward function {function!r} returned {kind} that is not an EvaluateResult: "
                f"{format_validation_error(error)}; {_EXPECTED}"
            ) from None
    raise TypeError(f"reward function {function!r} returned {type(value).__name__}; {_EXPECTED}")


_EXPECTED = (
    "expected an EvaluateResult, a dict of its shape ({'score': number, 'reason': str, "
    "'is_score_valid': bool, 'metrics': {name: {'score': number, 'reason': str}}, ...}), "
    "a number or a bool"
)


def _finite_scores(result: EvaluateResult) -> bool:
    """Whether every score of ``result`` (its own, its metrics', its steps') is finite."""
    numbers_ = [result.score, *(m.score for m in result.metrics.values())]
    numbers_ += [s.base_reward for s in result.step_outputs or ()]
    return all(isinstance(n, (int, float)) and math.isfinite(n) for n in numbers_)


def result_json(value: Any, function: str) -> dict[str, Any]:
    """``coerce_result(value, function).model_dump(mode="json")``, the shape the service sends.

    A plain number, the commonest return, skips building the model: that round trip cost about
    2 us an item, a fifth of a trivial batch item's cost on the server.
    """
    kind = type(value)
    if kind is bool:
        return {"score": 1.0 if value else 0.0, **_PLAIN_RESULT}
    if (kind is float and math.isfinite(value)) or (kind is int and abs(value) <= 2**53):
        return {"score": float(value), **_PLAIN_RESULT}
    return coerce_result(value, function).model_dump(mode="json")


def result_bytes(value: Any, function: str) -> bytes:
    """The JSON of :func:`result_json` (the same bytes ``orjson.dumps`` writes), serialized by
    pydantic straight from the model: what a worker process sends back. Building the dict
    first and encoding it cost 1.7 times as much."""
    kind = type(value)
    if kind is bool or kind is float or kind is int:
        return to_json(result_json(value, function))
    return _RESULT_SERIALIZER.to_json(coerce_result(value, function))


_RESULT_SERIALIZER = EvaluateResult.__pydantic_serializer__


_PLAIN_RESULT: dict[str, Any] = {
    "reason": None,
    "is_score_valid": True,
    "metrics": {},
    "step_outputs": None,
    "error": None,
}


def coerce_batch_result(value: Any, function: str, expected: int) -> list[EvaluateResult]:
    """A batch function returns one result per rollout, in order."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise TypeError(
            f"batch reward function {function!r} returned {type(value).__name__}; "
            f"expected a list of {expected} results"
        )
    if len(value) != expected:
        raise ValueError(
            f"batch reward function {function!r} returned {len(value)} results "
            f"for {expected} rollouts"
        )
    return [coerce_result(item, f"{function}[{i}]") for i, item in enumerate(value)]
