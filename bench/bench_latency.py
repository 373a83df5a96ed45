"""Latency from an event's production to its alert on the alerts topic, at a steady
offered rate (not a burst), for the tokenradar worker and the raw aiokafka loop
(pipelines.py: the same per-event work and a one-line spike rule, the floor).

One run per pipeline, on one broker: a fresh topic (4 partitions); ``--users`` users'
history (``--history`` requests each, bench_worker.py's steady usage) produced at once
and taken by the pipeline (not timed); then ``--seconds`` of the same usage offered at
``--rate`` events/s, sent in 10 ms ticks, in which ``--spike-share`` of the events (each
of a user not spiked before) asks for 100 times the user's usual input tokens: the
events that alert, a known share. Latency is the alert record's timestamp on the alerts
topic less its spike event's production time, both read back from Kafka, for each
spike's first alert.

The worker runs with ``scoring.reorder_seconds = 0``: with the default 120 s window an
event waits, by design, until its partition has delivered one 120 s (event time) later,
which on a live stream is 120 s. Run::

    .venv/bin/python bench/bench_latency.py --rate 5000 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench_worker import PARTITIONS, _counted, stop, synthetic_events
from kafka import KafkaConsumer, KafkaProducer
from pipelines import start

from tokenradar.lab.brokers import free_port, kafka_broker
from tokenradar.lab.process import wait_until
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.broker import create_topics
from tokenradar.streams.publish import message_key, produce_events

TICK_SECONDS = 0.01
NO_REORDER = "[scoring]\nreorder_seconds = 0\n"
USERS, HISTORY, SPIKE_SHARE = 200, 35, 0.005
"""The defaults: 35 requests each, past the spike detector's 30 of history."""


@dataclass
class Latency:
    pipeline: str
    offered_per_s: float
    """The rate actually offered (events over the time taken to send them)."""
    spikes: int
    alerted: int
    p50_ms: float
    p99_ms: float


def offered_events(users: int, history: int, steady: int, spike_share: float,
                   ) -> tuple[list[dict[str, object]], list[dict[str, object]], set[str]]:
    """(history, steady events, the steady events' spike ids): one usage timeline."""
    events = synthetic_events(users * history + steady, users)
    history_part, steady_part = events[: users * history], events[users * history:]
    spiked_users: set[object] = set()
    spikes: set[str] = set()
    since = 0
    for event in steady_part:
        since += 1
        if since >= 1 / spike_share and event["user_id"] not in spiked_users:
            event["input_tokens"] = 100 * int(event["input_tokens"])  # type: ignore[call-overload]
            spiked_users.add(event["user_id"])
            spikes.add(str(event["event_id"]))
            since = 0
    return history_part, steady_part, spikes


def offer(broker: str, topic: str, events: list[dict[str, object]], rate: float,
          ) -> tuple[dict[str, int], float]:
    """Send ``events`` at ``rate`` per second in 10 ms ticks; (event id -> record timestamp
    in ms, the rate achieved)."""
    messages = [(str(e["event_id"]), message_key(e), json.dumps(e, separators=(",", ":")).encode())
                for e in events]
    producer = KafkaProducer(bootstrap_servers=bootstrap_of(broker), linger_ms=1, acks=1)
    per_tick = max(1, round(rate * TICK_SECONDS))
    sent: dict[str, int] = {}
    began = time.monotonic()
    for tick, first in enumerate(range(0, len(messages), per_tick)):
        pause = began + tick * TICK_SECONDS - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        for event_id, key, value in messages[first: first + per_tick]:
            stamp = int(time.time() * 1000)
            producer.send(topic, key=key, value=value, timestamp_ms=stamp)
            sent[event_id] = stamp
    producer.flush()
    took = time.monotonic() - began
    producer.close()
    return sent, len(messages) / took


def first_alerts(broker: str, topic: str) -> dict[str, int]:
    """Event id -> timestamp (ms) of the first alert record naming it."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap_of(broker), group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    first: dict[str, int] = {}
    try:
        for record in consumer:
            for event_id in json.loads(record.value)["event_ids"]:
                first[event_id] = min(first.get(event_id, record.timestamp), record.timestamp)
    finally:
        consumer.close()
    return first


def measure(pipeline: str, broker: str, users: int, history: int, rate: float, seconds: float,
            spike_share: float, folder: Path) -> Latency:
    """One pipeline's latency at a steady offered rate (see the module's docstring)."""
    tag = uuid.uuid4().hex[:8]
    topic, alerts = f"latency-{tag}", f"latency-alerts-{tag}"
    create_topics(broker, [topic, alerts], PARTITIONS)
    history_part, steady, spikes = offered_events(users, history, round(rate * seconds),
                                                  spike_share)
    config = folder / "no-reorder.toml"
    config.write_text(NO_REORDER)
    extra = (("--alerts-topic", alerts, "--config", str(config)) if pipeline == "worker"
             else (alerts,))
    port = free_port()
    process, log = start(pipeline, broker, topic, port, folder, extra)
    try:
        produce_events(bootstrap_of(broker), topic, history_part)
        wait_until(lambda: _counted(port) >= len(history_part), 900,
                   lambda: f"{pipeline} took {_counted(port):,.0f}: see {log}")
        sent, offered = offer(broker, topic, steady, rate)
        total = len(history_part) + len(steady)
        wait_until(lambda: _counted(port) >= total, 900,
                   lambda: f"{pipeline} took {_counted(port):,.0f} of {total:,}: see {log}")
        time.sleep(1)  # the last alerts out of the producer
    finally:
        stop(process)
    alerted = first_alerts(broker, alerts)
    latencies = sorted(alerted[i] - sent[i] for i in spikes if i in alerted)
    if len(latencies) < 2:
        raise RuntimeError(f"{pipeline}: {len(latencies)} of {len(spikes)} spikes alerted")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Latency(pipeline, offered, len(spikes), len(latencies), cuts[49], cuts[98])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--history", type=int, default=HISTORY)
    parser.add_argument("--spike-share", type=float, default=SPIKE_SHARE)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with kafka_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for pipeline in ("worker", "raw loop"):
                print(measure(pipeline, broker, args.users, args.history, args.rate,
                              args.seconds, args.spike_share, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
