"""The replica routing decisions on their own, with a hand-moved clock: cool-downs, Retry-After
floors, failover and giving up. test_replicas.py checks the same against real servers."""

from __future__ import annotations

import pytest

from reward_kit import AuthenticationError, EvaluatorUnavailable, Overloaded
from reward_kit.sdk._core import ClientConfig, Failure
from reward_kit.sdk._replicas import Replicas


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replicas(count: int = 2, **options: float) -> tuple[Replicas, Clock]:
    clock = Clock()
    urls = ",".join(f"http://r{i}:8000" for i in range(count))
    config = ClientConfig(url=urls, backoff_base=0.5, backoff_max=30.0, **options)  # type: ignore[arg-type]
    return Replicas(config, clock=clock), clock


DOWN = Failure(EvaluatorUnavailable("could not reach"), True)
REJECTED = Failure(AuthenticationError("bad key"), False)


def overloaded(retry_after: float) -> Failure:
    return Failure(Overloaded("busy", retry_after=retry_after), True)


def top(value: float, uniform: float = 0.0) -> float:
    return value


def test_a_failed_replica_is_failed_over_at_once_and_cools_down() -> None:
    group, clock = replicas(3)
    # Failovers take turns over the healthy replicas, so they do not all land on one.
    assert [group.next_attempt(0, 1, DOWN) for _ in range(2)] == [(0, 0.0), (2, 0.0)]
    assert sorted(group.first() for _ in range(4)) == [0, 0, 2, 2]  # 1 gets no new work
    assert sorted(replica for replica, _ in group.shards(9)) == [0, 2]
    clock.now += 1.9  # two failures in a row: it cools 0.5 * 2**2 = 2 s
    assert sorted(replica for replica, _ in group.shards(9)) == [0, 2]
    clock.now += 0.1
    assert sorted(replica for replica, _ in group.shards(9)) == [0, 1, 2]


def test_the_cool_down_doubles_with_each_failure_in_a_row_up_to_backoff_max() -> None:
    group, clock = replicas(2)
    cools = []
    for _ in range(8):
        start = clock.now
        group.next_attempt(0, 0, DOWN)
        while group.first(0) != 0:
            clock.now += 0.25
        cools.append(clock.now - start)
    assert cools == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    group.succeeded(0)
    group.next_attempt(0, 0, DOWN)
    clock.now += 1.0
    assert group.first(0) == 0  # a success forgot the earlier failures


def test_a_retry_after_keeps_a_replica_out_and_is_waited_for_when_none_is_free() -> None:
    group, clock = replicas(2)
    assert group.next_attempt(0, 0, overloaded(20)) == (1, 0.0)
    clock.now += 10
    # Now 1 fails too (1 s cool-down): 0 still has 10 s of its Retry-After, 1 is free sooner.
    step = group.next_attempt(1, 1, DOWN, uniform=max)
    assert step == (1, 1.0)  # backoff step 2 (0.5 * 2**1), 1 is the replica free soonest
    clock.now += 1
    assert group.first() == 1
    group.next_attempt(2, 1, overloaded(15))
    # Both cooling: 0 free in 9 s, 1 in 15: wait for 0's Retry-After, over the 2 s backoff.
    assert group.next_attempt(3, 1, overloaded(15), uniform=max) == (0, 9.0)


def test_a_retry_after_beyond_max_retry_after_moves_on_or_gives_up() -> None:
    group, _ = replicas(2, max_retry_after=30.0)
    assert group.next_attempt(0, 0, overloaded(120)) == (1, 0.0)
    alone, _ = replicas(1, max_retry_after=30.0)
    assert alone.next_attempt(0, 0, overloaded(120)) is None


def test_giving_up_when_out_of_retries_or_not_retryable() -> None:
    group, _ = replicas(2, max_retries=2)
    assert group.next_attempt(2, 0, DOWN) is None
    assert group.next_attempt(0, 0, REJECTED) is None
    assert group.first() in (0, 1)


@pytest.mark.parametrize(("size", "count"), [(1, 3), (2, 3), (7, 3), (0, 2)])
def test_shards_cover_every_position_once_in_order(size: int, count: int) -> None:
    group, _ = replicas(count)
    shards = group.shards(size)
    positions = [i for _, shard in shards for i in shard]
    assert positions == list(range(size))
    assert len(shards) == min(size, count)
    assert (
        max((len(s) for _, s in shards), default=0) - min((len(s) for _, s in shards), default=0)
        <= 1
    )
