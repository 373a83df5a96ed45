"""Liveness, readiness and stall detection, judged on a clock the test moves by hand."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import pytest
from conftest import Clock

from tokenradar.streams.app import events_waiting
from tokenradar.streams.health import Verdict, WorkerHealth


@pytest.fixture
def health(clock: Clock) -> WorkerHealth:
    return WorkerHealth(stall_seconds=60, clock=clock)


def test_starting_worker_is_alive_but_not_ready(health: WorkerHealth) -> None:
    assert health.liveness().ok
    assert health.readiness() == Verdict(False, "starting: joining the group")


def test_worker_without_partitions_is_not_ready(health: WorkerHealth) -> None:
    health.observe(assigned=0, waiting=0)
    assert health.readiness() == Verdict(
        False, "no partition assigned (more workers than partitions?)")


def test_events_waiting_with_none_processed_for_stall_seconds_is_a_stall(
    health: WorkerHealth, clock: Clock
) -> None:
    health.observe(assigned=2, waiting=30)
    clock.now += 59
    health.observe(assigned=2, waiting=30)
    assert health.readiness().ok and not health.stalled()
    clock.now += 1
    health.observe(assigned=2, waiting=30)
    assert health.stalled()
    assert health.readiness().reason == (
        "stalled: 30 events wait on 2 assigned partitions and none was processed for 60 s")
    assert health.liveness().ok  # a stall is not a crash: readiness says it


def test_progress_clears_the_stall(health: WorkerHealth, clock: Clock) -> None:
    health.observe(assigned=2, waiting=30)
    clock.now += 120
    health.observe(assigned=2, waiting=30)
    assert health.stalled()
    health.processed()
    assert not health.stalled() and health.readiness().ok


def test_a_quiet_topic_is_not_a_stall(health: WorkerHealth, clock: Clock) -> None:
    for _ in range(10):  # ten minutes with nothing to process
        clock.now += 60
        health.observe(assigned=4, waiting=0)
    assert not health.stalled() and health.readiness().ok


def test_events_arriving_after_a_quiet_hour_get_stall_seconds_to_be_processed(
    health: WorkerHealth, clock: Clock
) -> None:
    clock.now += 3600  # the last batch was an hour ago
    health.observe(assigned=4, waiting=5)
    assert not health.stalled()
    clock.now += 60
    health.observe(assigned=4, waiting=5)
    assert health.stalled()


def test_recovering_state_is_not_ready_and_not_a_stall(
    health: WorkerHealth, clock: Clock
) -> None:
    health.observe(assigned=4, waiting=1000)
    clock.now += 30
    health.observe(assigned=4, waiting=0, recovering=True)
    clock.now += 600  # a long table recovery
    health.observe(assigned=4, waiting=0, recovering=True)
    assert not health.stalled() and health.liveness().ok
    assert health.readiness().reason == "rebalancing or recovering state"
    health.observe(assigned=4, waiting=1000)  # recovered: the stall clock starts anew
    assert health.readiness().ok


def test_crashed_agent_fails_liveness_for_good(health: WorkerHealth) -> None:
    health.observe(assigned=4, waiting=0)
    health.agent_crashed(OverflowError("int too large"))
    health.processed()
    assert health.liveness().reason == "the agent crashed (OverflowError); restart the worker"
    assert not health.readiness().ok


def test_event_loop_that_stops_sampling_is_dead_and_stalled(
    health: WorkerHealth, clock: Clock
) -> None:
    health.observe(assigned=4, waiting=0)
    clock.now += 59
    assert health.liveness().ok
    clock.now += 1
    assert health.liveness().reason == "the event loop has not run for 60 s"
    assert health.stalled() and not health.readiness().ok


class TP(NamedTuple):
    topic: str
    partition: int


class Consumer:
    """What ``events_waiting`` reads of a Faust consumer: offsets, no broker."""

    def __init__(self, fetched: dict[TP, int | None], listed: dict[TP, int],
                 committed: dict[TP, int], earliest: dict[TP, int]) -> None:
        self.fetched, self.listed, self.earliest = fetched, listed, earliest
        self._committed_offset = committed

    def highwater(self, tp: TP) -> int | None:
        return self.fetched.get(tp)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.listed[tp] for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest[tp] for tp in tps}


def test_waiting_events_count_from_processed_else_committed_else_first_offset() -> None:
    processed, committed, new, expired = TP("in", 0), TP("in", 1), TP("in", 2), TP("in", 3)
    consumer = Consumer(
        fetched={processed: 100, committed: 50, new: None, expired: None},
        listed={processed: 90, committed: 70, new: 12, expired: 500},  # Tansu: low, never high
        committed={processed: 10, committed: 40},
        earliest={new: 0, expired: 500},  # retention removed all of `expired`
    )
    waiting = asyncio.run(events_waiting(consumer, [processed, committed, new, expired],
                                         {("in", 0): 95}))
    assert waiting == (100 - 95) + (70 - 40) + (12 - 0) + 0


def test_a_failing_offset_query_falls_back_to_the_fetched_high_watermark() -> None:
    class Broken(Consumer):
        async def highwaters(self, *tps: TP) -> dict[TP, int]:
            raise ConnectionError("broker gone")

    tp = TP("in", 0)
    consumer = Broken(fetched={tp: 40}, listed={}, committed={tp: 25}, earliest={})
    assert asyncio.run(events_waiting(consumer, [tp], {})) == 15


def test_module_example_runs() -> None:
    import doctest

    from tokenradar.streams import health

    result = doctest.testmod(health)
    assert result.attempted and not result.failed
