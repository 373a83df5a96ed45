"""A running worker on a real broker answers its probes: alive, ready, not stalled."""

from __future__ import annotations

import pytest
from worker_harness import PARTITIONS, encode, producer, steady_usage

from streams.process import wait_until

pytestmark = pytest.mark.integration


def test_running_worker_is_live_ready_and_not_stalled(broker_url, topics, start_worker):
    events = steady_usage("user-0", count=20)
    send = producer(broker_url)
    for event in events:
        send.send(topics.input, key=b"platform", value=encode(event))
    send.flush()
    send.close()

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
