"""The demo: a broker (embedded when none is given), a worker, a simulated organisation
with injected incidents, alerts printed as they arrive, and a summary at the end.

Everything it starts it stops, by PID: the worker subprocess, and the embedded broker.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from tokenradar.lab.brokers import broker_security, kafka_broker
from tokenradar.lab.process import WorkerProcess
from tokenradar.lab.simulation import (
    Label,
    Organisation,
    SimulationSpec,
    build_organisation,
    iter_events,
)
from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.broker import BROKER_ENV, create_topics
from tokenradar.streams.publish import message_key
from tokenradar.streams.security import kafka_python_options

PARTITIONS = 4
SESSION_TIMEOUT_SECONDS = 6
"""Tansu forms a new consumer group after half the session timeout: the demo starts fast."""
DEMO_CONFIG = """\
# The demo's detector configuration: the defaults, with service accounts allowlisted.
[allowlist]
users = ["svc-*"]
"""
MALFORMED = (b"{not json", b'{"event_id": "x", "user_id": "bob"}', b"\xff\xfe\x00")
"""A few broken messages, to show that they are dead-lettered, not dropped."""


def demo_spec(users: int) -> SimulationSpec:
    """A small organisation: two weeks of history and one incident of each kind."""
    return SimulationSpec(users=users, teams=max(2, users // 12), days=14, seed=11,
                          incidents_per_kind=1, shifted_teams=1, warmup_days=7)


def run_demo(seconds: float = 60.0, users: int = 40,
             say: Callable[[str], None] = print) -> int:
    """Run the demo for about ``seconds``; return 0 when alerts were shown."""
    run = uuid.uuid4().hex[:8]
    started = time.monotonic()
    say = _timed(say, started)
    with tempfile.TemporaryDirectory(prefix="tokenradar-demo-") as tmp, kafka_broker() as url:
        say(f"broker: {url}" + ("" if _given_broker() else " (embedded Tansu, memory only)"))
        topics = {name: f"demo-{run}-{name}"
                  for name in ("token-usage", "token-anomalies", "token-usage.dlq")}
        create_topics(url, list(topics.values()), PARTITIONS, security=broker_security())
        config = Path(tmp) / "demo.toml"
        config.write_text(DEMO_CONFIG)
        options = {"broker": url, "config": str(config), "group-id": f"demo-{run}",
                   "input-topic": topics["token-usage"],
                   "alerts-topic": topics["token-anomalies"],
                   "dlq-topic": topics["token-usage.dlq"], "partitions": str(PARTITIONS),
                   "session-timeout-seconds": str(SESSION_TIMEOUT_SECONDS),
                   "data-dir": str(Path(tmp) / "faust")}
        with WorkerProcess(options, Path(tmp) / "worker.log") as worker:
            say(f"worker: pid {worker.process.pid}, metrics on "
                f"http://127.0.0.1:{worker.metrics_port}/metrics")
            printer = AlertPrinter(url, topics["token-anomalies"], say)
            printer.start()
            try:
                spec = demo_spec(users)
                organisation = build_organisation(spec)
                produced = _produce(url, topics["token-usage"], spec, organisation,
                                    seconds * 0.6, say)
                _wait_until_read(worker, produced, started + seconds + 60)
                time.sleep(2.0)  # the last alerts' round trip
            finally:
                printer.stop()
            outcomes = worker.outcomes()
            if worker.process.poll() is not None:
                say(f"the worker stopped early; its log:\n{worker.describe()}")
        _summary(say, produced, outcomes, printer.kinds, time.monotonic() - started)
        _caught_and_missed(say, organisation.labels, printer.alerts)
    return 0 if printer.kinds else 1


def _timed(say: Callable[[str], None], started: float) -> Callable[[str], None]:
    """``say`` with the seconds since the demo started in front of each line."""
    return lambda line: say(f"[{time.monotonic() - started:5.1f}s] {line}" if line else "")


def _given_broker() -> bool:
    import os

    return bool(os.environ.get(BROKER_ENV))


def _produce(url: str, topic: str, spec: SimulationSpec, organisation: Organisation,
             pace_seconds: float, say: Callable[[str], None]) -> int:
    """History at full speed, then the incident days paced, so alerts arrive as they happen."""
    first_incident = min((label.start for label in organisation.labels if not label.benign),
                         default="")
    events = list(iter_events(spec, organisation))
    history = [e for e in events if str(e["timestamp"]) < first_incident]
    rest = events[len(history):]
    incidents = Counter(label.kind for label in organisation.labels if not label.benign)
    say(f"simulated organisation: {spec.users} people in {spec.teams} teams over {spec.days} "
        f"days, {len(events):,} requests; injected: "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(incidents.items())))
    producer = KafkaProducer(bootstrap_servers=bootstrap_of(url), linger_ms=20, acks=1,
                             **kafka_python_options(broker_security()))
    try:
        for event in history:
            _send(producer, topic, event)
        producer.flush()
        say(f"sent {len(history):,} requests of history; now the incident days, paced "
            f"over {pace_seconds:.0f} s")
        for raw in MALFORMED:
            producer.send(topic, value=raw)
        chunk = max(1, len(rest) // 40)
        for start in range(0, len(rest), chunk):
            for event in rest[start:start + chunk]:
                _send(producer, topic, event)
            producer.flush()
            time.sleep(pace_seconds / 40)
        producer.flush()
    finally:
        producer.close()
    return len(events) + len(MALFORMED)


def _send(producer: KafkaProducer, topic: str, event: dict[str, object]) -> None:
    producer.send(topic, key=message_key(event),
                  value=json.dumps(event, separators=(",", ":")).encode())


def _wait_until_read(worker: WorkerProcess, produced: int, deadline: float) -> None:
    """Until every message was scored, dropped as a duplicate or dead-lettered."""
    while time.monotonic() < deadline and worker.process.poll() is None:
        outcomes = worker.outcomes()
        if sum(outcomes.values()) - outcomes.get("rekeyed", 0) >= produced:
            return
        time.sleep(0.5)


class AlertPrinter:
    """Reads the alerts topic in a thread and prints each new alert once."""

    def __init__(self, url: str, topic: str, say: Callable[[str], None]) -> None:
        self.kinds: Counter[str] = Counter()
        self.alerts: list[AnomalyEvent] = []
        """The first alert of each incident (alert_id), in the order they arrived."""
        self._seen: set[str] = set()
        self._say = say
        self._stopping = threading.Event()
        self._consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap_of(url),
                                       auto_offset_reset="earliest", group_id=None,
                                       consumer_timeout_ms=500,
                                       **kafka_python_options(broker_security()))
        self._thread = threading.Thread(target=self._run, name="alert-printer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            for alert in self._alerts():
                if alert.alert_id in self._seen:
                    continue  # an incident that worsened, re-published under its id
                self._seen.add(alert.alert_id)
                self.alerts.append(alert)
                self.kinds[alert.kind] += 1
                self._say(f"  ALERT {alert.severity.upper():<8} {alert.kind:<16} "
                          f"{alert.user_id:<18} {alert.event_time:%a %H:%M}  "
                          f"{alert.explanation}")

    def _alerts(self) -> Iterator[AnomalyEvent]:
        for record in self._consumer:
            yield AnomalyEvent.model_validate_json(record.value)
            if self._stopping.is_set():
                return


def _summary(say: Callable[[str], None], produced: int, outcomes: dict[str, float],
             kinds: Counter[str], seconds: float) -> None:
    say("")
    say(f"summary after {seconds:.0f} s")
    say(f"  messages sent     {produced:,} ({len(MALFORMED)} of them malformed on purpose)")
    say(f"  scored            {outcomes.get('scored', 0):,.0f}")
    say(f"  scored late       {outcomes.get('late', 0):,.0f}")
    say(f"  duplicates        {outcomes.get('duplicate', 0):,.0f}")
    say(f"  dead-lettered     {outcomes.get('dead_lettered', 0):,.0f}")
    say(f"  alerts            {sum(kinds.values())}: "
        + (", ".join(f"{kind} {n}" for kind, n in kinds.most_common()) or "none"))


def _caught_and_missed(say: Callable[[str], None], labels: list[Label],
                       alerts: list[AnomalyEvent]) -> None:
    """Each injected incident, caught (by which alert, how soon) or missed."""
    from datetime import datetime

    from tokenradar.lab.evaluate import IncidentLabel, evaluate
    from tokenradar.lab.evaluation_text import duration

    incidents = [IncidentLabel(label.incident_id, label.kind, label.user_id, label.team,
                               datetime.fromisoformat(label.start),
                               datetime.fromisoformat(label.end), members=label.members)
                 for label in labels if not label.benign]
    outcomes = evaluate(incidents, alerts, None).outcomes
    caught = sum(outcome.detected for outcome in outcomes)
    say(f"  injected incidents caught {caught} of {len(outcomes)}:")
    for outcome in outcomes:
        label = outcome.label
        found = (f"caught by {outcome.alerts[0].kind} after {duration(outcome.delay)}"
                 if outcome.delay is not None else "MISSED")
        say(f"    {label.kind:<17} {label.user_id:<18} {found}")
