"""The fuzz run: hostile messages (:mod:`tokenradar.lab.hostile`) through a real worker.

A worker process on a broker gets ``count`` hostile messages; the run waits until each
is accounted for (scored, duplicate or dead-lettered), samples the worker's resident
memory all along, then reads back every output and looks for the canary planted in
fields outside the contract: in the alerts and dead-letter topics (keys, values,
headers), the state changelog, the ``/metrics`` page and the worker's log.
``bench/fuzz.py`` prints the figures; ``tests/integration/test_hostile_input.py``
asserts them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

from kafka import KafkaConsumer, KafkaProducer

from tokenradar.lab.hostile import CANARY, DUPLICATE, SCORED, HostileProducer
from tokenradar.lab.process import WorkerProcess, wait_until
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.broker import create_topics

PARTITIONS = 4
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""What the fuzz producer may send: more than any hostile message it makes."""


@dataclass
class FuzzReport:
    sent: int
    due: Counter[str]
    """Messages by due fate: scored, duplicate, or the dead letter's error type."""
    outcomes: dict[str, float]
    """The worker's tokenradar_events_total by outcome."""
    dead_letters: Counter[str]
    """Dead letters read back from the topic, by error type."""
    alerts: int
    seconds: float
    """From the first message sent to the last one accounted for."""
    rss_mb: list[float] = field(default_factory=list)
    """The worker's resident memory, sampled every half second from its start."""
    ready_sample: int = 0
    """Index of the first sample taken once the worker was ready (``/readyz``: its
    partitions assigned), before the first message: the baseline of its growth."""
    leaks: list[str] = field(default_factory=list)
    """Where the canary was found (nowhere, if all is well)."""
    planted: int = 0
    """Input records that carry the canary: shows the search would find it."""
    alive: bool = True
    healthz: int = 0

    @property
    def accounted(self) -> float:
        counts = self.outcomes
        return (counts.get("scored", 0) + counts.get("late", 0) + counts.get("duplicate", 0)
                + counts.get("dead_lettered", 0))

    def describe(self) -> str:
        counts = self.outcomes
        scored = counts.get("scored", 0) + counts.get("late", 0)
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.dead_letters.items()))
        rss = self.rss_mb[self.ready_sample:] or [0.0]
        return "\n".join([
            f"{self.sent:,} hostile messages in {self.seconds:.1f} s "
            f"({self.sent / max(self.seconds, 1e-9):,.0f} messages/s)",
            f"  accounted: {self.accounted:,.0f} = {scored:,.0f} scored "
            f"({counts.get('late', 0):,.0f} of them late) + {counts.get('duplicate', 0):,.0f} "
            f"duplicates + {counts.get('dead_lettered', 0):,.0f} dead-lettered "
            f"({counts.get('rekeyed', 0):,.0f} went through the re-key hop)",
            f"  due:       {self.due[SCORED]:,} scored + {self.due[DUPLICATE]:,} duplicates + "
            f"{self.sent - self.due[SCORED] - self.due[DUPLICATE]:,} dead-lettered",
            f"  dead letters by type: {kinds}",
            f"  alerts: {self.alerts:,}",
            f"  worker RSS: {rss[0]:.0f} MB when ready, {max(rss):.0f} MB peak, "
            f"{rss[-1]:.0f} MB at the end ({len(rss)} samples, every 0.5 s)",
            f"  worker alive: {self.alive}, /healthz {self.healthz}",
            f"  canary planted in {self.planted:,} input messages; found in: "
            f"{', '.join(self.leaks) if self.leaks else 'no output'} (alerts, dead letters, "
            "state changelog, /metrics, worker log)",
        ])


class MemorySampler(threading.Thread):
    """Samples a process's resident memory (VmRSS, Linux) until stopped."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples_mb: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:  # the process is gone
                return
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    self.samples_mb.append(int(line.split()[1]) / 1024)
            self._stop_event.wait(self.every_s)

    def stop(self) -> list[float]:
        self._stop_event.set()
        self.join()
        return self.samples_mb


def run_fuzz(broker_url: str, count: int, workdir: Path, seed: int = 0,
             huge_every: int = 1000, timeout_s: float = 600.0) -> FuzzReport:
    """Send ``count`` hostile messages to a fresh worker; account for them; look for leaks."""
    tag = uuid.uuid4().hex[:10]
    input_topic, alerts_topic, dlq_topic = f"usage-{tag}", f"alerts-{tag}", f"dlq-{tag}"
    group = f"tokenradar-fuzz-{tag}"
    create_topics(broker_url, [input_topic], PARTITIONS)
    log_path = workdir / "worker.log"
    worker = WorkerProcess({
        "broker": broker_url, "input-topic": input_topic, "alerts-topic": alerts_topic,
        "dlq-topic": dlq_topic, "group-id": group, "session-timeout-seconds": "6",
        "quiet-flush-seconds": "2", "data-dir": str(workdir / "faust-data"),
    }, log_path)
    sampler = MemorySampler(worker.process.pid)
    sampler.start()
    try:
        messages = list(HostileProducer(seed, huge_every=huge_every).messages(count))
        wait_until(lambda: worker.probe("/readyz")[0] == 200, 120, worker.describe)
        time.sleep(1.0)  # a sample or two of the idle worker
        ready_sample = len(sampler.samples_mb) - 1
        started = time.monotonic()
        producer = KafkaProducer(bootstrap_servers=bootstrap_of(broker_url), linger_ms=5,
                                 max_request_size=MAX_MESSAGE_BYTES)
        for message in messages:
            producer.send(input_topic, key=message.key, value=message.value)
        producer.flush()
        producer.close()

        def done() -> bool:
            return worker.held() == 0 and _accounted(worker.outcomes()) >= count

        wait_until(done, timeout_s, worker.describe)
        seconds = time.monotonic() - started
        time.sleep(1.0)  # anything counted twice would show now
        outcomes = worker.outcomes()
        metrics_page = urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics",
                               timeout=5).read()
        healthz, _ = worker.probe("/healthz")
        alive = worker.process.poll() is None
        dead_records = _read_all(broker_url, dlq_topic, int(outcomes.get("dead_lettered", 0)))
        alert_records = _read_all(broker_url, alerts_topic, 0)
        changelog = _read_all(broker_url, f"{group}-user-state-changelog", 0)
        planted = sum(CANARY.encode() in _record_bytes(record)
                      for record in _read_all(broker_url, input_topic, count))
    finally:
        worker.stop()
        rss = sampler.stop()
    report = FuzzReport(
        sent=count, due=Counter(message.fate for message in messages), outcomes=outcomes,
        dead_letters=Counter(json.loads(record.value)["error_type"] for record in dead_records),
        alerts=len(alert_records), seconds=seconds, rss_mb=rss, ready_sample=ready_sample,
        alive=alive, healthz=healthz, planted=planted)
    canary = CANARY.encode()
    for name, records in (("alerts topic", alert_records), ("dead-letter topic", dead_records),
                          ("state changelog", changelog)):
        if any(canary in _record_bytes(record) for record in records):
            report.leaks.append(name)
    if canary in metrics_page:
        report.leaks.append("/metrics")
    if canary in log_path.read_bytes():
        report.leaks.append("worker log")
    return report


def _accounted(outcomes: dict[str, float]) -> float:
    return sum(outcomes.get(name, 0) for name in ("scored", "late", "duplicate",
                                                    "dead_lettered"))


def _record_bytes(record: object) -> bytes:
    key = getattr(record, "key", None) or b""
    value = getattr(record, "value", None) or b""
    headers = b"".join(name.encode() + (data or b"")
                       for name, data in getattr(record, "headers", None) or [])
    return key + value + headers


def _read_all(broker_url: str, topic: str, at_least: int, timeout_s: float = 60) -> list:  # type: ignore[type-arg]
    """Every record of ``topic`` (at least ``at_least``), read until 2 s bring nothing."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap_of(broker_url),
                             auto_offset_reset="earliest", consumer_timeout_ms=2000,
                             group_id=None, max_partition_fetch_bytes=MAX_MESSAGE_BYTES)
    records: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = list(consumer)
            records.extend(batch)
            if len(records) >= at_least and not batch:
                break
    finally:
        consumer.close()
    return records
