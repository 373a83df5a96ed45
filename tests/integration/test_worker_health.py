"""A running worker on a real broker answers its probes: alive, ready, not stalled."""

from __future__ import annotations

import uuid

import pytest
from worker_harness import PARTITIONS, Topics, send_events, steady_usage

from tokenradar.lab.process import wait_until
from tokenradar.streams.broker import create_topics

pytestmark = pytest.mark.integration


def test_running_worker_is_live_ready_and_not_stalled(broker_url, topics, start_worker):
    events = steady_usage("user-0", count=20)
    send_events(broker_url, topics.input, events, key=b"platform")

    worker = start_worker(topics)
    worker.wait_for_events("scored", len(events))
    wait_until(lambda: worker.probe("/readyz")[0] == 200, 30, worker.describe)

    assert worker.probe("/healthz") == (200, "alive\n")
    assert worker.probe("/readyz") == (200, f"ready: {PARTITIONS} partitions assigned\n")
    assert worker.probe("/nowhere")[0] == 404
    samples = worker.metrics()
    assert samples[("tokenradar_stalled", ())] == 0
    assert samples[("tokenradar_assigned_partitions", ())] == PARTITIONS
    assert samples[("tokenradar_consumer_lag", ())] == 0
    assert samples[("process_resident_memory_bytes", ())] > 0


def test_a_worker_beyond_the_partition_count_stays_unready(broker_url, start_worker):
    tag = uuid.uuid4().hex[:10]
    topics = Topics(f"usage-{tag}", f"alerts-{tag}", f"dlq-{tag}", f"tokenradar-{tag}")
    create_topics(broker_url, [topics.input], 1)
    first = start_worker(topics)
    wait_until(lambda: first.probe("/readyz")[0] == 200, 60, first.describe)
    second = start_worker(topics)

    def one_ready_one_idle() -> bool:
        answers = sorted([first.probe("/readyz"), second.probe("/readyz")])
        return answers == [(200, "ready: 1 partition assigned\n"),
                           (503, "no partition assigned (more workers than partitions?)\n")]

    wait_until(one_ready_one_idle, 60, lambda: first.describe() + second.describe())
    assert first.probe("/healthz")[0] == second.probe("/healthz")[0] == 200
