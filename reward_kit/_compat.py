"""What the upstream reward-kit 0.4 module paths add to reward-kit's own objects.

``reward_kit.typed_interface.reward_function`` makes the same :class:`RewardFunction` as
``reward_kit.reward_function`` does, with upstream's two checks on top: ``**kwargs`` is
required at decoration, and bad input or output raises ``ValueError`` in upstream's words.
``LegacyFunction`` wraps an undecorated function for the upstream ``RewardFunction`` class,
which accepted two older return forms with a ``DeprecationWarning``.
"""

from __future__ import annotations

import functools
import inspect
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from ._errors import InvalidRequest
from ._function import RewardFunction
from ._models import EvaluateResult

__all__ = ["EvaluationMode", "LegacyFunction", "UpstreamFunction", "upstream_reward_function"]

EvaluationMode = Literal["pointwise", "batch"]

_INPUT = re.compile(r"^(messages|rollouts_messages|ground_truth)\b")


class ReturnValueError(TypeError, ValueError):
    """A return value that is not an EvaluateResult. Upstream raised ValueError, reward-kit
    raises TypeError: this is both, so either ``except`` catches it."""


class UpstreamFunction(RewardFunction[Any]):
    """A :class:`RewardFunction` whose errors read like upstream reward-kit 0.4's."""

    def _arguments(
        self, messages: Any, ground_truth: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        try:
            return super()._arguments(messages, ground_truth, kwargs)
        except InvalidRequest as error:
            found = _INPUT.match(error.message)
            if found is None:
                raise
            raise InvalidRequest(
                f"Input {found.group(1)!r} failed Pydantic validation: {error.message}"
            ) from None

    def _coerce(self, value: Any, count: int) -> Any:
        try:
            return super()._coerce(value, count)
        except TypeError as error:
            # Upstream's message is pydantic's own report on the whole return value.
            try:
                _adapter(self.mode).validate_python(value)
            except ValidationError as report:
                raise ReturnValueError(
                    f"Return value from function {self.name!r} failed Pydantic validation "
                    f"for mode {self.mode!r}:\n{report}"
                ) from None
            raise ReturnValueError(str(error)) from None


@functools.cache
def _adapter(mode: str) -> TypeAdapter[Any]:
    # Built on first use: only a wrong return value needs one.
    return TypeAdapter(list[EvaluateResult] if mode == "batch" else EvaluateResult)


def upstream_reward_function(
    _func: Callable[..., Any] | None = None,
    *,
    mode: EvaluationMode = "pointwise",
    id: str | None = None,
    requirements: list[str] | None = None,
    resources: Mapping[str, list[Any]] | None = None,
) -> Any:
    """Upstream's decorator signature: ``reward_function(_func=None, *, mode, id,
    requirements, resources)``.

    ``resources`` maps a kind to objects with ``setup()`` and ``get_client()``; the function
    receives ``resources={kind: [client, ...]}``. They are set up once per process on first
    use (upstream did it at import), through reward-kit's ``setup=``.
    """

    def decorate(func: Callable[..., Any]) -> UpstreamFunction:
        parameters = inspect.signature(func).parameters.values()
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            name = getattr(func, "__name__", repr(func))
            raise ValueError(
                f"Function '{name}' must accept **kwargs parameter. "
                "Please add '**kwargs' to the function signature."
            )
        fn = UpstreamFunction(
            func,
            mode=mode,
            requirements=requirements or (),
            setup=_resource_setup(resources) if resources else None,
        )
        # Upstream's introspection attributes, read by its deploy tooling.
        fn._reward_function_id = id  # type: ignore[attr-defined]
        fn._reward_function_requirements = requirements  # type: ignore[attr-defined]
        fn._reward_function_mode = mode  # type: ignore[attr-defined]
        fn._reward_function_resources = resources  # type: ignore[attr-defined]
        return fn

    return decorate if _func is None else decorate(_func)


def _resource_setup(resources: Mapping[str, list[Any]]) -> Callable[[], dict[str, list[Any]]]:
    def setup() -> dict[str, list[Any]]:
        for group in resources.values():
            for resource in group:
                resource.setup()
        return {kind: [r.get_client() for r in group] for kind, group in resources.items()}

    return setup


class LegacyFunction(RewardFunction[Any]):
    """An undecorated function called through upstream's ``RewardFunction`` class: its
    ``(score, {name: score})`` tuples and plain dicts are converted, with the
    ``DeprecationWarning`` upstream gave."""

    def _coerce(self, value: Any, count: int) -> Any:
        return super()._coerce(_legacy(value), count)


def _legacy(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Mapping):
        _deprecated("a (score, {name: score}) tuple")
        score, parts = value
        return {"score": score, "metrics": _metrics(parts)}
    if isinstance(value, Mapping) and "score" in value:
        _deprecated("a dict")
        metrics = value.get("metrics")
        return {**value, "metrics": _metrics(metrics) if isinstance(metrics, Mapping) else metrics}
    return value


def _metrics(parts: Mapping[Any, Any]) -> dict[Any, Any]:
    # A bare number was a metric's score; the reason was "<name> score" (as upstream).
    return {
        name: part if isinstance(part, Mapping) else {"score": part, "reason": f"{name} score"}
        for name, part in parts.items()
    }


def _deprecated(form: str) -> None:
    # stacklevel: _deprecated, _legacy, _coerce, invoke, RewardFunction.__call__, the caller.
    warnings.warn(
        f"returning {form} from a reward function is deprecated; return an EvaluateResult",
        DeprecationWarning,
        stacklevel=6,
    )
