"""A stall on a real broker: the broker freezes mid-stream (SIGSTOP), events wait and
none is processed, so the worker turns stalled; once it thaws (SIGCONT), it recovers.

Uses a broker of its own (embedded Tansu), whichever broker the other tests use:
freezing a shared one would stall them too.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from worker_harness import (
    PARTITIONS,
    SESSION_TIMEOUT_SECONDS,
    child_pid_listening_on,
    encode,
    producer,
    steady_usage,
)

from tokenradar.lab.brokers import embedded_tansu
from tokenradar.lab.process import WorkerProcess, wait_until
from tokenradar.streams.broker import create_topics

pytestmark = pytest.mark.integration

STALL_SECONDS = 4
USERS = 300



def stalled(worker: WorkerProcess) -> float | None:
    return worker.metrics().get(("tokenradar_stalled", ()))


def test_frozen_broker_turns_the_worker_stalled_and_thawed_it_recovers(tmp_path: Path):
    with embedded_tansu() as url:
        broker_pid = child_pid_listening_on(url)
        tag = uuid.uuid4().hex[:10]
        topic = f"usage-{tag}"
        create_topics(url, [topic], PARTITIONS)
        send = producer(url)
        # In event-time order, as a producer sends them: none is late for the reorder window.
        # Enough that the worker, taking a whole fetch at a time, is still scoring when the
        # broker freezes: the fetches it got tell it more events wait than it took.
        events = sorted((e for user in range(USERS)
                         for e in steady_usage(f"user-{user}", count=100)),
                        key=lambda e: e["timestamp"])
        for event in events:
            send.send(topic, key=b"platform", value=encode(event))
        send.flush()
        send.close()

        options = {"broker": url, "input-topic": topic, "alerts-topic": f"alerts-{tag}",
                   "dlq-topic": f"dlq-{tag}", "group-id": f"tokenradar-{tag}",
                   "session-timeout-seconds": str(SESSION_TIMEOUT_SECONDS),
                   "data-dir": str(tmp_path / "faust-data"),
                   "stall-seconds": str(STALL_SECONDS)}
        with WorkerProcess(options, tmp_path / "worker.log") as worker:
            wait_until(lambda: worker.events("scored") > 0, 60, worker.describe)
            os.kill(broker_pid, signal.SIGSTOP)
            try:
                wait_until(lambda: stalled(worker) == 1, 30, worker.describe)
                status, reason = worker.probe("/readyz")
                assert status == 503 and reason.startswith("stalled: "), reason
                assert worker.probe("/healthz") == (200, "alive\n")  # a stall is no crash
                assert worker.events("scored") < len(events)
            finally:
                os.kill(broker_pid, signal.SIGCONT)

            wait_until(lambda: worker.events("scored") >= len(events), 90, worker.describe)
            wait_until(lambda: worker.probe("/readyz")[0] == 200 and stalled(worker) == 0,
                       30, worker.describe)
