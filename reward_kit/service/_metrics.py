"""Prometheus metrics of the evaluator, recorded in plain dicts and exported at scrape time.

prometheus_client's own ``Counter``/``Histogram`` take a lock and walk their buckets on every
update: four updates per request cost ~10 us, a fifth of a trivial /evaluate. Every update here
happens on the event-loop thread, so plain dicts need no lock; prometheus_client still does the
exposition, through a custom collector.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_ITEM_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)
_QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Histogram:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= value.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        # The "le" label as prometheus_client writes it: 0.005, 1.0, +Inf.
        labels = [repr(float(bound)) for bound in self.bounds] + ["+Inf"]
        running, out = 0, []
        for label, count in zip(labels, self.counts, strict=True):
            running += count
            out.append((label, float(running)))
        return out


class Metrics:
    """The evaluator's metrics, one set per app (no global registry).

    >>> metrics = Metrics()
    >>> metrics.count_request("POST", "/evaluate", 200, "exact", 0.002)
    >>> text = metrics.render()[0].decode()
    >>> 'rk_requests_total{method="POST",route="/evaluate",status="200"} 1.0' in text
    True
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[tuple[str, str], _Histogram] = {}
        self.items: dict[tuple[str, str], int] = {}
        self.item_duration: dict[str, _Histogram] = {}
        self.loop_lag = _Histogram(_LAG_BUCKETS)
        self.queue_wait = _Histogram(_QUEUE_BUCKETS)
        self.admission_refused: dict[str, int] = {}
        self.prompt_not_found: dict[str, int] = {}
        self._in_flight: Callable[[], int] = lambda: 0
        self._queued: Callable[[], int] = lambda: 0
        self._workers = 0
        self._pending: Callable[[], int] = lambda: 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    # -- recording (event-loop thread only) -------------------------------------------------

    def count_request(
        self, method: str, route: str, status: int, function: str, seconds: float
    ) -> None:
        key = (method, route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get((route, function))
        if histogram is None:
            histogram = self.latency[(route, function)] = _Histogram(_LATENCY_BUCKETS)
        histogram.observe(seconds)

    def observe_outcomes(self, function: str, outcomes: Iterable[Any]) -> None:
        durations = self.item_duration.get(function)
        if durations is None:
            durations = self.item_duration[function] = _Histogram(_ITEM_BUCKETS)
        # Counted per status first: a 1,000-item batch then costs a few dict updates, not
        # a thousand (this runs on the event loop, after the last chunk is in).
        statuses: dict[str, int] = {}
        bounds, counts, bucket = durations.bounds, durations.counts, bisect.bisect_left
        total = 0.0
        for outcome in outcomes:
            status = outcome.status
            statuses[status] = statuses.get(status, 0) + 1
            if status == "ok":
                seconds = outcome.duration_ms / 1000
                counts[bucket(bounds, seconds)] += 1
                total += seconds
        durations.total += total
        for status, count in statuses.items():
            key = (function, status)
            self.items[key] = self.items.get(key, 0) + count

    def count_admission_refused(self, reason: str) -> None:
        self.admission_refused[reason] = self.admission_refused.get(reason, 0) + 1

    def count_prompt_not_found(self, function: str, samples: int) -> None:
        self.prompt_not_found[function] = self.prompt_not_found.get(function, 0) + samples

    def track_admission(self, in_flight: Callable[[], int], queued: Callable[[], int]) -> None:
        self._in_flight = in_flight
        self._queued = queued

    def track_pool(self, workers: int, pending: Callable[[], int]) -> None:
        self._workers = workers
        self._pending = pending

    # -- exposition --------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self.metrics
        # Scrapes run on the event loop too, so nothing changes while this reads.
        yield _counter(
            CounterMetricFamily(
                "rk_requests",
                "HTTP requests by route and status code",
                labels=["method", "route", "status"],
            ),
            m.requests.items(),
        )
        latency = HistogramMetricFamily(
            "rk_request_duration_seconds",
            "HTTP request latency by route and function",
            labels=["route", "function"],
        )
        for latency_labels, histogram in m.latency.items():
            latency.add_metric(list(latency_labels), histogram.cumulative(), histogram.total)
        yield latency
        yield _counter(
            CounterMetricFamily(
                "rk_items",
                "Evaluated items by function and status (ok, error, timeout, ...)",
                labels=["function", "status"],
            ),
            m.items.items(),
        )
        durations = HistogramMetricFamily(
            "rk_item_duration_seconds", "Reward function run time per item", labels=["function"]
        )
        for function, histogram in m.item_duration.items():
            durations.add_metric([function], histogram.cumulative(), histogram.total)
        yield durations
        lag = HistogramMetricFamily(
            "rk_event_loop_lag_seconds",
            "How late the server's event loop woke a timer (something blocked it)",
        )
        lag.add_metric([], m.loop_lag.cumulative(), m.loop_lag.total)
        yield lag
        pending = m._pending()
        yield GaugeMetricFamily(
            "rk_in_flight_requests", "Requests being evaluated", value=m._in_flight()
        )
        yield GaugeMetricFamily(
            "rk_queued_requests", "Requests waiting for an evaluation slot", value=m._queued()
        )
        wait = HistogramMetricFamily(
            "rk_queue_wait_seconds",
            "Time a request waited for an evaluation slot (requests that had to wait)",
        )
        wait.add_metric([], m.queue_wait.cumulative(), m.queue_wait.total)
        yield wait
        yield _counter(
            CounterMetricFamily(
                "rk_admission_refused",
                "Requests answered 429 by admission: queue_full, expected_wait, queue_timeout",
                labels=["reason"],
            ),
            (((reason,), count) for reason, count in m.admission_refused.items()),
        )
        yield _counter(
            CounterMetricFamily(
                "rk_openrlhf_prompt_not_found",
                "OpenRLHF samples whose prompt was not found in the query (the whole query "
                "was scored as the response)",
                labels=["function"],
            ),
            (((function,), count) for function, count in m.prompt_not_found.items()),
        )
        yield GaugeMetricFamily("rk_pool_workers", "Worker processes", value=m._workers)
        yield GaugeMetricFamily(
            "rk_pool_busy_tasks", "Tasks running or queued in the worker pool", value=pending
        )
        yield GaugeMetricFamily(
            "rk_pool_queue_depth",
            "Tasks waiting for a free worker",
            value=max(0, pending - m._workers),
        )


def _counter(family: Any, counts: Iterable[tuple[Sequence[str], int]]) -> Any:
    for labels, count in counts:
        family.add_metric(list(labels), count)
    return family
