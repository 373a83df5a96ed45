"""Latency from an event's production to its alert on the alerts topic, at a steady
offered rate (not a burst), for the tokenradar worker and the raw aiokafka loop
(pipelines.py: the same per-event work and a one-line spike rule, the floor).

One run per pipeline, on one broker: a fresh topic (4 partitions); ``--users`` users'
history (``--history`` requests each, bench_worker.py's steady usage) produced at once
and taken by the pipeline (not timed); then ``--seconds`` of the same usage offered at
``--rate`` events/s, sent in 10 ms ticks, in which ``--spike-share`` of the events (each
of a user not spiked before) asks for 100 times the user's usual input tokens and gets
100 times the usual answer (a huge input answered as usual is a document read, not a
spike): the events that alert, a known share. Latency is the alert record's timestamp on the alerts
topic less its spike event's production time, both read back from Kafka, for each
spike's first alert.

The worker runs with ``scoring.reorder_seconds = 0``: with the default 120 s window an
event waits, by design, until its partition has delivered one 120 s (event time) later,
which on a live stream is 120 s.

Beside the latency, each run says where the time can go: the pipeline process's CPU
time per steady event (``/proc``), and the rate it took the steady events at (events over
the time from the first one offered to the last one counted: the offered rate when it
keeps up, its capacity when it falls behind, and then the latency is its queue). The
scoring core's own CPU time per event on the same events (``replay``'s path: parse,
reorder, score, in this process) splits the worker's into scoring and the rest. With
``--sustained``, each round also offers the rate the worker took at ``--rate`` times
``--sustained`` (say 0.5: half its capacity), so the pipeline's own latency shows without
a queue. Run::

    .venv/bin/python bench/bench_latency.py --rate 5000 --seconds 5 --sustained 0.5
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
from pipelines import BEFORE, ProcStat, source_tree, start

from tokenradar.detectors import ScoringEngine
from tokenradar.lab.brokers import free_port, kafka_broker
from tokenradar.lab.process import wait_until
from tokenradar.replay import score_stream
from tokenradar.schemas import DetectorConfig, parse_event
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
    took_per_s: float
    """Steady events over the time from the first offered to the last counted."""
    cpu_us_per_event: float
    """The pipeline process's CPU time (user + system) over the steady part, per event."""

    def __str__(self) -> str:
        return (f"{self.pipeline:14} offered {self.offered_per_s:7,.0f}/s took "
                f"{self.took_per_s:7,.0f}/s  p50 {self.p50_ms:7,.0f} ms  p99 "
                f"{self.p99_ms:7,.0f} ms  alerted {self.alerted}/{self.spikes}  CPU "
                f"{self.cpu_us_per_event:5,.0f} us/event")


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
            for field in ("input_tokens", "output_tokens"):
                event[field] = 100 * int(event[field])  # type: ignore[call-overload]
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


def scoring_cpu_us(users: int, history: int, steady: int, spike_share: float) -> float:
    """CPU microseconds per event of the scoring core alone on the same events (parse,
    reorder, score: ``replay``'s path, the worker's ``ScoringEngine``), in this process."""
    history_part, steady_part, _ = offered_events(users, history, steady, spike_share)
    raws = [json.dumps(e, separators=(",", ":")) for e in history_part + steady_part]
    engine = ScoringEngine(DetectorConfig.model_validate({"scoring": {"reorder_seconds": 0}}))
    began = time.process_time()
    for _ in score_stream(((parse_event(raw.encode()), raw) for raw in raws), engine):
        pass
    return (time.process_time() - began) * 1e6 / len(raws)


def measure(pipeline: str, broker: str, users: int, history: int, rate: float, seconds: float,
            spike_share: float, folder: Path, before: Path | None = None) -> Latency:
    """One pipeline's latency at a steady offered rate (see the module's docstring);
    ``before``: the source tree of :data:`pipelines.BEFORE`."""
    tag = uuid.uuid4().hex[:8]
    topic, alerts = f"latency-{tag}", f"latency-alerts-{tag}"
    create_topics(broker, [topic, alerts], PARTITIONS)
    history_part, steady, spikes = offered_events(users, history, round(rate * seconds),
                                                  spike_share)
    config = folder / "no-reorder.toml"
    config.write_text(NO_REORDER)
    extra = (("--alerts-topic", alerts, "--config", str(config))
             if pipeline in ("worker", BEFORE) else (alerts,))
    port = free_port()
    process, log = start(pipeline, broker, topic, port, folder, extra, before)
    total = len(history_part) + len(steady)
    try:
        produce_events(bootstrap_of(broker), topic, history_part)
        wait_until(lambda: _counted(port) >= len(history_part), 900,
                   lambda: f"{pipeline} took {_counted(port):,.0f}: see {log}")
        stat = ProcStat(process.pid)
        cpu_before, began = stat.cpu_seconds(), time.monotonic()
        sent, offered = offer(broker, topic, steady, rate)
        while (counted := _counted(port)) < total:
            if process.poll() is not None or time.monotonic() - began > 900:
                raise RuntimeError(f"{pipeline} took {counted:,.0f} of {total:,}: see {log}")
            time.sleep(0.05)
        took = len(steady) / (time.monotonic() - began)
        cpu = stat.cpu_seconds() - cpu_before
        time.sleep(1)  # the last alerts out of the producer
    finally:
        stop(process)
    alerted = first_alerts(broker, alerts)
    latencies = sorted(alerted[i] - sent[i] for i in spikes if i in alerted)
    if len(latencies) < 2:
        raise RuntimeError(f"{pipeline}: {len(latencies)} of {len(spikes)} spikes alerted")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Latency(pipeline, offered, len(spikes), len(latencies), cuts[49], cuts[98], took,
                   cpu * 1e6 / len(steady))


def compare(broker: str, rate: float, seconds: float, rounds: int, folder: Path,
            sustained: float = 0.0, before: Path | None = None, users: int = USERS,
            history: int = HISTORY, spike_share: float = SPIKE_SHARE,
            ) -> dict[str, list[Latency]]:
    """Each round: the worker (and the worker ``before``) and the raw loop at ``rate``;
    with ``sustained``, then both again at that share of the rate the worker took."""
    names = ("worker", *((BEFORE,) if before else ()), "raw loop")
    runs: dict[str, list[Latency]] = {}

    def run(name: str, at: float, label: str) -> Latency:
        done = measure(name, broker, users, history, at, seconds, spike_share, folder, before)
        runs.setdefault(label, []).append(done)
        print(f"  {label:28} {done}", flush=True)
        return done

    for _ in range(rounds):
        took = {name: run(name, rate, f"{name} at {rate:,.0f}/s").took_per_s for name in names}
        if sustained:
            at = sustained * took["worker"]
            for name in names:
                run(name, at, f"{name} at {sustained:.0%} of capacity")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--history", type=int, default=HISTORY)
    parser.add_argument("--spike-share", type=float, default=SPIKE_SHARE)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sustained", type=float, default=0.5,
                        help="also offer this share of the rate the worker took (0: not)")
    parser.add_argument("--before", metavar="COMMIT", help="also run the worker of this commit")
    args = parser.parse_args()
    with kafka_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        before = source_tree(args.before, Path(tmp)) if args.before else None
        compare(broker, args.rate, args.seconds, args.rounds, Path(tmp), args.sustained, before,
                args.users, args.history, args.spike_share)
    steady = round(args.rate * args.seconds)
    for _ in range(args.rounds):
        alone = scoring_cpu_us(args.users, args.history, steady, args.spike_share)
        print(f"scoring core alone on the same events: {alone:,.0f} us/event of CPU")


if __name__ == "__main__":
    main()
