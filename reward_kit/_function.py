"""``@reward_function`` and the :class:`RewardFunction` it returns."""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar, overload

from ._calling import (
    CallSignature,
    coerce_batch_result,
    coerce_messages,
    coerce_result,
    result_bytes,
    result_json,
)
from ._metric_keys import check_metric_names
from ._models import EvaluateResult

__all__ = ["Isolation", "Mode", "RewardFunction", "reward_function"]

Isolation = Literal["process", "thread", "inline"]
Mode = Literal["pointwise", "batch"]
R = TypeVar("R")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_UNSET: Any = object()


class RewardFunction(Generic[R]):
    """A reward function plus how it should be run. Made by :func:`reward_function`.

    Calling it runs the function here, in this process, and raises its own exceptions:

    >>> @reward_function
    ... def exact(messages, ground_truth=None):
    ...     return messages[-1].content == ground_truth
    >>> exact([{"role": "assistant", "content": "4"}], ground_truth="4").score
    1.0
    """

    func: Callable[..., Any]

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        mode: Mode = "pointwise",
        timeout: float | None = None,
        isolation: Isolation | None = None,
        requirements: Sequence[str] = (),
        setup: Callable[[], Any] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> None:
        if isinstance(func, RewardFunction):
            func = func.func
        if not callable(func):
            raise TypeError(f"@reward_function needs a function, got {type(func).__name__}")
        self.func = func
        self.name = name if name is not None else getattr(func, "__name__", "reward")
        if not _NAME.match(self.name):
            raise ValueError(
                f"reward function name {self.name!r} must start with a letter or '_' and "
                "contain only letters, digits, '_', '.' and '-'"
            )
        if mode not in ("pointwise", "batch"):
            hint = (
                "; upstream reward-kit's RewardFunction(mode='local'|'remote') is "
                "reward_kit.reward_function.RewardFunction"
                if mode in ("local", "remote", "fireworks_hosted")
                else ""
            )
            raise ValueError(f"mode must be 'pointwise' or 'batch', got {mode!r}{hint}")
        self.mode: Mode = mode
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout) if timeout is not None else None
        self.is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - callable instances with async __call__
        )
        if isolation is None:
            # Async rewards get a loop of their own (engine/_loops.py), never the server's.
            isolation = "thread" if self.is_async else "process"
        if isolation not in ("process", "thread", "inline"):
            raise ValueError(
                f"isolation must be 'process', 'thread' or 'inline', got {isolation!r}"
            )
        self.isolation: Isolation = isolation
        if isinstance(requirements, str) or not all(isinstance(r, str) for r in requirements):
            raise TypeError("requirements must be a list of requirement strings")
        self.requirements = tuple(requirements)
        if setup is not None and not callable(setup):
            raise TypeError("setup must be a callable taking no arguments")
        self.setup = setup
        self.metrics = _metric_names(metrics)
        self.signature = CallSignature.of(func, self.name)
        if setup is not None and not self.signature.accepts("resources"):
            raise TypeError(
                f"reward function {self.name!r} has setup= but no 'resources' parameter to "
                "receive what setup returns"
            )
        self.doc = inspect.getdoc(func) or ""
        self.source: str | None = _default_source(func)
        self._resources: Any = _UNSET
        self._setup_lock = threading.Lock()
        self.__doc__ = func.__doc__
        self.__name__ = self.name
        self.__qualname__ = getattr(func, "__qualname__", self.name)
        self.__module__ = getattr(func, "__module__", __name__)
        self.__wrapped__ = func

    def __repr__(self) -> str:
        return f"<RewardFunction {self.name!r} mode={self.mode} isolation={self.isolation}>"

    # -- calling ---------------------------------------------------------------------------

    def resources(self) -> Any:
        """What ``setup`` returned; it runs once per process, on first use."""
        if self.setup is None:
            return None
        if self._resources is _UNSET:
            with self._setup_lock:
                if self._resources is _UNSET:
                    self._resources = self.setup()
        return self._resources

    def _arguments(
        self, messages: Any, ground_truth: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        if self.mode == "batch":
            first: Any = [
                coerce_messages(m, f"rollouts_messages.{i}") for i, m in enumerate(messages)
            ]
        else:
            first = coerce_messages(messages)
        call_kwargs = self.signature.select(kwargs)
        call_kwargs.pop("ground_truth", None)  # only the real one, never a kwarg of that name
        passed, truth = self.signature.ground_truth(ground_truth)
        if passed:
            call_kwargs["ground_truth"] = truth
        if self.mode == "batch" and "ground_truths" in self.signature.accepted:
            call_kwargs["ground_truths"] = ground_truth
        if self.setup is not None:
            call_kwargs["resources"] = self.resources()
        return first, call_kwargs

    def _coerce(self, value: Any, count: int) -> Any:
        if self.mode == "batch":
            return coerce_batch_result(value, self.name, count)
        return coerce_result(value, self.name)

    def _run(
        self, messages: Any, ground_truth: Any, kwargs: dict[str, Any] | None
    ) -> tuple[Any, int]:
        first, call_kwargs = self._arguments(messages, ground_truth, kwargs or {})
        value = self.func(first, **call_kwargs)
        # The exact type first: isawaitable costs more than a trivial reward's comparison.
        if type(value) is not EvaluateResult and inspect.isawaitable(value):
            value = asyncio.run(_await(value))
        return value, len(first)

    async def _arun(
        self, messages: Any, ground_truth: Any, kwargs: dict[str, Any] | None
    ) -> tuple[Any, int]:
        first, call_kwargs = self._arguments(messages, ground_truth, kwargs or {})
        value = self.func(first, **call_kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value, len(first)

    def invoke(
        self, messages: Any, ground_truth: Any = None, kwargs: dict[str, Any] | None = None
    ) -> EvaluateResult | list[EvaluateResult]:
        """Run synchronously whatever the function's kind (async ones get their own loop)."""
        value, count = self._run(messages, ground_truth, kwargs)
        return self._coerce(value, count)  # type: ignore[no-any-return]

    async def ainvoke(
        self, messages: Any, ground_truth: Any = None, kwargs: dict[str, Any] | None = None
    ) -> EvaluateResult | list[EvaluateResult]:
        """Run on the current event loop (the function must be async)."""
        value, count = await self._arun(messages, ground_truth, kwargs)
        return self._coerce(value, count)  # type: ignore[no-any-return]

    def invoke_json(
        self, messages: Any, ground_truth: Any = None, kwargs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """:meth:`invoke` for one pointwise item, as the JSON-ready result the service sends."""
        value, _ = self._run(messages, ground_truth, kwargs)
        return result_json(value, self.name)

    async def ainvoke_json(
        self, messages: Any, ground_truth: Any = None, kwargs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The async twin of :meth:`invoke_json`."""
        value, _ = await self._arun(messages, ground_truth, kwargs)
        return result_json(value, self.name)

    def invoke_encoded(
        self, messages: Any, ground_truth: Any = None, kwargs: dict[str, Any] | None = None
    ) -> bytes:
        """:meth:`invoke_json`'s result as JSON bytes, made without building the dict (what a
        worker process sends back to the server)."""
        value, _ = self._run(messages, ground_truth, kwargs)
        return result_bytes(value, self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        first_name = "rollouts_messages" if self.mode == "batch" else "messages"
        if len(args) > 2:
            raise TypeError(
                f"{self.name}() takes the messages and ground_truth positionally; "
                "pass everything else by keyword"
            )
        if args:
            messages = args[0]
        elif first_name in kwargs:
            messages = kwargs.pop(first_name)
        else:
            raise TypeError(f"{self.name}() missing required argument: {first_name!r}")
        ground_truth = args[1] if len(args) == 2 else kwargs.pop("ground_truth", None)
        if self.mode == "batch" and "ground_truths" in kwargs and ground_truth is None:
            ground_truth = kwargs.pop("ground_truths")
        if self.is_async:
            return self.ainvoke(messages, ground_truth, kwargs)  # type: ignore[return-value]
        return self.invoke(messages, ground_truth, kwargs)  # type: ignore[return-value]

    def describe(self, default_timeout: float | None = None) -> dict[str, Any]:
        """What ``GET /functions`` and ``rk functions`` show.

        ``timeout`` is the deadline that applies: the function's own, else ``default_timeout``
        (a server's default; ``None`` where there is no server to decide it yet).
        ``docstring`` is the issue's name for the docstring; ``doc`` stays for older clients.
        """
        return {
            "name": self.name,
            "docstring": self.doc,
            "doc": self.doc,
            "mode": self.mode,
            "timeout": self.timeout if self.timeout is not None else default_timeout,
            "isolation": self.isolation,
            "is_async": self.is_async,
            "requirements": list(self.requirements),
            "metrics": list(self.metrics) if self.metrics is not None else None,
        }


def _metric_names(metrics: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if metrics is None else check_metric_names(metrics)


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def _default_source(func: Callable[..., Any]) -> str | None:
    """An import spec a worker process can resolve, when the function has one."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        return None
    if module == "__main__":
        path = getattr(sys.modules.get("__main__"), "__file__", None)
        return f"{path}:{qualname}" if path else None
    return f"{module}:{qualname}"


PointwiseSync = RewardFunction[EvaluateResult]
PointwiseAsync = RewardFunction[Coroutine[Any, Any, EvaluateResult]]
BatchSync = RewardFunction[list[EvaluateResult]]
BatchAsync = RewardFunction[Coroutine[Any, Any, list[EvaluateResult]]]


class _PointwiseDecorator(Protocol):
    @overload
    def __call__(self, func: Callable[..., Awaitable[Any]], /) -> PointwiseAsync: ...
    @overload
    def __call__(self, func: Callable[..., Any], /) -> PointwiseSync: ...


class _BatchDecorator(Protocol):
    @overload
    def __call__(self, func: Callable[..., Awaitable[Any]], /) -> BatchAsync: ...
    @overload
    def __call__(self, func: Callable[..., Any], /) -> BatchSync: ...


@overload
def reward_function(func: Callable[..., Awaitable[Any]], /) -> PointwiseAsync: ...
@overload
def reward_function(func: Callable[..., Any], /) -> PointwiseSync: ...
@overload
def reward_function(
    *,
    name: str | None = ...,
    mode: Literal["batch"],
    timeout: float | None = ...,
    isolation: Isolation | None = ...,
    requirements: Sequence[str] = ...,
    setup: Callable[[], Any] | None = ...,
    metrics: Sequence[str] | None = ...,
) -> _BatchDecorator: ...
@overload
def reward_function(
    *,
    name: str | None = ...,
    mode: Literal["pointwise"] = ...,
    timeout: float | None = ...,
    isolation: Isolation | None = ...,
    requirements: Sequence[str] = ...,
    setup: Callable[[], Any] | None = ...,
    metrics: Sequence[str] | None = ...,
) -> _PointwiseDecorator: ...
def reward_function(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    mode: Mode = "pointwise",
    timeout: float | None = None,
    isolation: Isolation | None = None,
    requirements: Sequence[str] = (),
    setup: Callable[[], Any] | None = None,
    metrics: Sequence[str] | None = None,
) -> Any:
    """Declare a reward function: ``f(messages, ground_truth=None, **kwargs) -> EvaluateResult``.

    Works bare or with options. ``messages`` always arrives as ``list[Message]``; keyword
    arguments the function does not name are not passed; a number, bool or dict return value
    becomes an :class:`EvaluateResult`.

    >>> @reward_function(timeout=5, requirements=["sympy"])
    ... def length(messages, **kwargs):
    ...     return min(len(messages[-1].text) / 100, 1.0)
    >>> length([{"role": "assistant", "content": "hi"}]).score
    0.02

    Options: ``name`` (how it is addressed; default the Python name), ``mode`` ("pointwise", or
    "batch" to receive all rollouts at once), ``timeout`` (seconds), ``isolation`` ("process",
    "thread" or "inline"; sync functions default to "process", async ones run on the event
    loop), ``requirements`` (pip requirements for deploys), ``setup`` (called once per worker;
    its result reaches the function as ``resources``), ``metrics`` (the names of the metrics it
    returns: trainers that need the same keys for every sample, such as OpenRLHF, get exactly
    these, with the ones a result lacks filled in; see docs/sdk.md#openrlhf).
    """

    def decorate(f: Callable[..., Any]) -> RewardFunction[Any]:
        return RewardFunction(
            f,
            name=name,
            mode=mode,
            timeout=timeout,
            isolation=isolation,
            requirements=requirements,
            setup=setup,
            metrics=metrics,
        )

    if func is not None:
        return decorate(func)
    return decorate
