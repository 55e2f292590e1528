"""Upstream reward-kit 0.4's ``reward_kit.reward_function`` module: its ``RewardFunction``
class and its ``reward_function`` decorator, so code importing them runs unchanged.

``RewardFunction(func=..., mode="local")`` calls a function here; ``mode="remote"`` calls a
reward-kit evaluator through :class:`reward_kit.sdk.EvaluatorClient` (its credentials and
retries). Where this differs from upstream, and why: docs/compat.md.

>>> def length(messages, ground_truth=None, **kwargs):
...     return EvaluateResult(score=min(len(messages[-1]["content"]) / 10, 1.0))
>>> RewardFunction(func=length)([{"role": "assistant", "content": "hello"}]).score
0.5
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit

from ._compat import LegacyFunction, upstream_reward_function
from ._function import _NAME
from ._function import RewardFunction as _Decorated
from ._models import EvaluateResult

if TYPE_CHECKING:
    from ._compat_trl import LocalTRLReward, RemoteTRLReward
    from .sdk import EvaluatorClient

__all__ = ["RewardFunction", "reward_function"]

reward_function = upstream_reward_function

_MODES = ("local", "remote")
# Paths of an evaluator's scoring routes: the URL before them is the server's base URL.
_ROUTE = re.compile(r"^(?P<base>.*?)/(?:batch_evaluate|evaluate|reward)(?:/(?P<name>[^/]+))?/?$")


class RewardFunction:
    """A reward function called here (``mode="local"``) or on an evaluator (``"remote"``).

    ``func`` or ``func_path`` (``"pkg.mod:fn"`` or ``"pkg.mod.fn"``) for local mode;
    ``endpoint`` for remote mode: the evaluator's URL (``http://host:8000``, or upstream's
    ``.../evaluate/<name>`` form) or an :class:`~reward_kit.sdk.EvaluatorClient`; ``name``
    picks the function when the evaluator serves several. Other keyword arguments are
    passed on every call; a call's own keyword arguments win.
    """

    def __init__(
        self,
        func: Callable[..., Any] | None = None,
        func_path: str | None = None,
        mode: str = "local",
        endpoint: str | EvaluatorClient | None = None,
        name: str | None = None,
        model_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(_mode_error(mode))
        self.mode = mode
        self.func = func
        self.func_path = func_path
        self.endpoint = endpoint
        self.name = name
        self.model_id = model_id
        self.kwargs = kwargs
        self.function: str | None = None  # remote: the evaluator's function to call
        self._lock = threading.Lock()
        self._client: EvaluatorClient | None = None
        if mode == "local":
            if func is None:
                if func_path is None:
                    raise ValueError("Either 'func' or 'func_path' must be provided for local mode")
                self.func = func = _load(func_path)
            self._local = _wrap(func)
        else:
            self._base_url, self.function = _remote_target(endpoint, name)

    def __repr__(self) -> str:
        target = self.func_path or getattr(self.func, "__name__", None) or self.endpoint
        return f"<RewardFunction mode={self.mode} {target!r}>"

    def __call__(
        self, messages: list[Any], ground_truth: Any = None, **kwargs: Any
    ) -> EvaluateResult:
        """Score one conversation; a failure raises (reward-kit's typed errors when remote)."""
        combined = {**self.kwargs, **kwargs}
        if self.mode == "local":
            return cast(EvaluateResult, self._local.invoke(messages, ground_truth, combined))
        return self.client().evaluate(messages, ground_truth, function=self.function, **combined)

    def client(self) -> EvaluatorClient:
        """The :class:`~reward_kit.sdk.EvaluatorClient` remote mode calls (made on first use)."""
        if self.mode != "remote":
            raise ValueError("only a remote RewardFunction has an evaluator client")
        from .sdk import EvaluatorClient

        with self._lock:
            if self._client is None:
                given = self.endpoint
                self._client = (
                    given if isinstance(given, EvaluatorClient) else EvaluatorClient(self._base_url)
                )
        return self._client

    def close(self) -> None:
        """Close the evaluator client this object made (not one it was given)."""
        client, self._client = self._client, None
        if client is not None and client is not self.endpoint:
            client.close()

    def get_trl_adapter(self) -> LocalTRLReward | RemoteTRLReward:
        """A TRL reward function: ``(prompts, completions, **dataset_columns) -> rewards``.

        The dataset column ``solution`` is the ground truth and the other columns are
        keyword arguments. A completion that could not be scored gets ``None`` (logged),
        never 0. Remote mode sends the whole batch in one request.
        """
        from ._compat_trl import LocalTRLReward, RemoteTRLReward

        if self.mode == "local":
            return LocalTRLReward(self._local, defaults=self.kwargs, name=self._local.name)
        # An empty function name means the evaluator's only function.
        return RemoteTRLReward(
            self.client(),
            function=self.function or "",
            name=self.function or "reward",
            defaults=self.kwargs,
        )


def _mode_error(mode: str) -> str:
    if mode == "fireworks_hosted":
        return (
            "mode 'fireworks_hosted' is not supported: the Fireworks endpoint it called "
            "(/v1/models/<id>/reward) does not exist; serve the function with rk-serve and "
            "use mode='remote'"
        )
    return f"Invalid mode: {mode!r}; expected 'local' or 'remote'"


def _load(func_path: str) -> Callable[..., Any]:
    """``pkg.mod:fn`` or ``pkg.mod.fn``, imported here (as upstream does)."""
    module_path, colon, attr = func_path.partition(":")
    if not colon:
        module_path, _, attr = func_path.rpartition(".")
    if not module_path or not attr:
        raise ValueError(
            f"Invalid func_path format: {func_path!r}, expected 'module.path:function_name' "
            "or 'module.path.function_name'"
        )
    try:
        value: Any = importlib.import_module(module_path)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as error:
        raise ImportError(f"Failed to load function from path {func_path}: {error}") from error
    if not callable(value):
        raise TypeError(f"func_path {func_path!r} names a {type(value).__name__}, not a function")
    return cast(Callable[..., Any], value)


def _wrap(func: Callable[..., Any]) -> _Decorated[Any]:
    if isinstance(func, _Decorated):
        fn: _Decorated[Any] = func
    else:
        given = getattr(func, "__name__", "")
        fn = LegacyFunction(func, name=given if _NAME.match(given) else "reward")
    if fn.mode != "pointwise":
        raise ValueError(
            f"RewardFunction calls pointwise functions; {fn.name!r} is a batch function: "
            "call it directly with the rollouts"
        )
    return fn


def _remote_target(endpoint: Any, name: str | None) -> tuple[str, str | None]:
    """The evaluator's base URL and the function to call, from upstream's arguments."""
    from .sdk import EvaluatorClient

    if endpoint is None:
        raise ValueError(
            "remote mode needs endpoint=, the evaluator's URL (http://host:8000) or an "
            "EvaluatorClient; upstream's name-only form called https://api.fireworks.ai/v1/"
            "reward/<name>, which Fireworks does not serve"
        )
    if isinstance(endpoint, EvaluatorClient):
        return endpoint.config.url, name
    if not isinstance(endpoint, str):
        raise TypeError(f"endpoint: expected a URL or an EvaluatorClient, got {endpoint!r}")
    parts = urlsplit(endpoint)
    route = _ROUTE.match(parts.path)
    if route is None:
        return endpoint.rstrip("/"), name
    in_url = unquote(route["name"]) if route["name"] else None
    if name is not None and in_url is not None and name != in_url:
        raise ValueError(f"endpoint names function {in_url!r} but name={name!r}")
    base = urlunsplit((parts.scheme, parts.netloc, route["base"], "", ""))
    return base, name or in_url
