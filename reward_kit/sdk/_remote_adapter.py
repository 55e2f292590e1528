"""What the trainer adapters on a remote evaluator share (OpenRLHF's ``reward_func``, verl's
two ``compute_score`` forms): their settings, pickling, the client each thread opens, and the
metric keys every sample carries."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, ClassVar, Literal

import httpx

from .._metric_keys import MetricKeys, check_metric_names
from ._client import EvaluatorClient, build_config
from ._core import ClientConfig

__all__ = ["RemoteAdapter"]

logger = logging.getLogger("reward_kit.sdk")

# Per process: the threads' clients, a lock, and what was learnt from the evaluator.
_PER_PROCESS = ("_local", "_lock", "_keys", "_lookup")

_HINT = "pass metrics=[...] to the adapter (the same list in every process)"


class _Owned:
    """A thread's client, closed when the thread ends or the adapter goes (the thread-local
    storage holding it is dropped then)."""

    __slots__ = ("client",)

    def __init__(self, client: EvaluatorClient) -> None:
        self.client = client

    def __del__(self) -> None:
        self.client.close()


class _Borrowed(httpx.BaseTransport):
    """The caller's own transport, shared by the threads' clients and never closed by them:
    a thread ending must not close the connections other threads (and the caller) still use."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self.transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.transport.handle_request(request)

    def close(self) -> None:
        """Left to the caller, who opened it."""


class RemoteAdapter:
    """A picklable trainer reward function on a remote evaluator (trainers ship reward
    functions to Ray workers); each thread opens its own connection on first use, because one
    httpx client shared by hundreds of threads (verl's and OpenRLHF's reward threads) shows
    transport faults under load.

    Built from an :class:`EvaluatorClient` (or a ``ClientConfig``), it takes the client's
    settings, and passing ``auth``, ``timeout`` or ``max_retries`` as well is a TypeError; a
    custom ``transport`` is shared by the threads and left open (its owner closes it), and is
    not carried to other processes (they use httpx's default one).
    ``on_error`` is "raise" or the (finite) number a failed sample is scored instead.

    Every sample carries the same metric keys, in every process: ``metrics`` when given. With
    ``on_error`` set and no ``metrics``, only ``reward_kit_failed`` (a sample can fail before
    the evaluator was reached, and its row must match the others). With ``on_error="raise"``
    and no ``metrics``: the names the function declares, read from the evaluator's
    ``GET /functions`` once per process (a failed lookup raises, as any failure does), else
    those of its first valid result.
    """

    trainer: ClassVar[str] = "trainer"

    def __init__(
        self,
        url: str | Sequence[str] | EvaluatorClient | ClientConfig,
        *,
        function: str,
        auth: httpx.Auth | str | Literal[False] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        on_error: str | float = "raise",
        metrics: Sequence[str] | None = None,
    ) -> None:
        if on_error != "raise" and (
            isinstance(on_error, bool)
            or not isinstance(on_error, (int, float))
            or not math.isfinite(on_error)
        ):
            raise ValueError(f"on_error must be 'raise' or a finite number, got {on_error!r}")
        if metrics is not None:
            metrics = check_metric_names(metrics)
        if isinstance(url, EvaluatorClient):
            url = url.config
        if isinstance(url, ClientConfig):
            given = {"auth": auth, "timeout": timeout, "max_retries": max_retries}
            ignored = [name for name, value in given.items() if value is not None]
            if ignored:
                # They would be silently dropped: the client's own settings are used.
                raise TypeError(
                    f"{', '.join(ignored)}: not accepted with an EvaluatorClient or ClientConfig, "
                    "which carries its own; set them on the client, or pass a URL"
                )
            self.config = url
            if url.transport is not None and not isinstance(url.transport, _Borrowed):
                self.config = dataclasses.replace(url, transport=_Borrowed(url.transport))
        else:
            self.config = build_config(url, auth=auth, timeout=timeout, max_retries=max_retries)
        self.function = function
        self.on_error = on_error
        self.metrics = tuple(metrics) if metrics is not None else None
        self.__name__ = function
        self._lock = threading.Lock()
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        # ClientConfig drops its transport itself.
        return {k: v for k, v in self.__dict__.items() if k not in _PER_PROCESS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._local = threading.local()

    def close(self) -> None:
        """Close the calling thread's connection (a later call opens a new one); other
        threads' connections close when their thread ends or the adapter is dropped."""
        owned: _Owned | None = self._local.__dict__.pop("owned", None)
        if owned is not None:
            owned.client.close()

    def _get_client(self) -> EvaluatorClient:
        owned: _Owned | None = getattr(self._local, "owned", None)
        if owned is None:
            owned = self._local.owned = _Owned(EvaluatorClient.from_config(self.config))
        return owned.client

    def _get_keys(self, client: EvaluatorClient) -> MetricKeys:
        """Every sample's metric keys: fixed by the settings with ``on_error`` or ``metrics``
        set, else looked up once per process.

        The threads that need them meanwhile (trainers call from dozens at once) wait for that
        one lookup and share its outcome, an error too: during an outage they must not each
        retry a lookup in turn.
        """
        keys: MetricKeys | None = self.__dict__.get("_keys")
        if keys is not None:
            return keys
        if self.on_error != "raise" or self.metrics is not None:
            return self._fixed_keys()
        with self._lock:
            lookup: Future[MetricKeys] | None = self.__dict__.get("_lookup")
            mine = lookup is None
            if lookup is None:
                lookup = Future()
                self._lookup: Future[MetricKeys] = lookup
        if not mine:
            return lookup.result()
        try:
            described = [f for f in client.functions() if f.get("name") == self.function]
            declared = described[0].get("metrics") if described else None
            self._keys = MetricKeys(
                function=self.function,
                declared=declared,
                flag_failures=False,
                trainer=self.trainer,
                hint=_HINT,
            )
            lookup.set_result(self._keys)
            return self._keys
        except BaseException as error:
            lookup.set_exception(error)
            raise
        finally:
            del self._lookup  # after a failure, the next call looks up again

    def _keys_for_failure(self) -> MetricKeys:
        """The keys of a sample scored ``on_error``: the same as every other sample's, since
        with ``on_error`` set they never depend on the evaluator."""
        return self._fixed_keys()

    def _fixed_keys(self) -> MetricKeys:
        with self._lock:
            keys: MetricKeys | None = self.__dict__.get("_keys")
            if keys is None:
                keys = self._keys = MetricKeys(
                    function=self.function,
                    declared=self.metrics,
                    flag_failures=self.on_error != "raise",
                    trainer=self.trainer,
                    hint=_HINT,
                )
        return keys
