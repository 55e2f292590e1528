"""Prometheus metrics of the environment sessions, read from the SessionManager at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..env import SessionManager

__all__ = ["EnvCollector"]


class EnvCollector:
    """Sessions open (by status), created, tool calls (by env and status), kills and reaps."""

    def __init__(self, sessions: SessionManager) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.sessions
        live = s.live()
        gauge = GaugeMetricFamily(
            "rk_env_sessions", "Environment sessions open, by status", labels=["status"]
        )
        for status in ("active", "done", "truncated", "failed"):
            gauge.add_metric([status], live.get(status, 0))
        yield gauge
        created = CounterMetricFamily(
            "rk_env_sessions_created", "Environment sessions started", labels=["env"]
        )
        for env, count in s.created.items():
            created.add_metric([env], count)
        yield created
        steps = CounterMetricFamily(
            "rk_env_tool_calls", "Tool calls answered, by env and status", labels=["env", "status"]
        )
        for (env, status), count in s.steps.items():
            steps.add_metric([env, status], count)
        yield steps
        kills = CounterMetricFamily(
            "rk_env_kills",
            "Session processes killed: timeout, crashed, memory",
            labels=["reason"],
        )
        for reason, count in s.kills.items():
            kills.add_metric([reason], count)
        yield kills
        reaped = CounterMetricFamily(
            "rk_env_reaped", "Sessions ended by the reaper: idle, lifetime", labels=["reason"]
        )
        for reason, count in s.reaped.items():
            reaped.add_metric([reason], count)
        yield reaped
