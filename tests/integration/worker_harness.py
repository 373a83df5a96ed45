"""Running a worker as a subprocess against a real broker, and the events tests send it."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from tokenradar.lab.process import WorkerProcess
from tokenradar.schemas.settings import bootstrap_of

PARTITIONS = 4
SESSION_TIMEOUT_SECONDS = 6  # Tansu forms a group after half of it: keeps tests short
QUIET_FLUSH_SECONDS = 2
"""The held events of a routing key quiet this long are scored: the tests' last events."""


@dataclass(frozen=True)
class Topics:
    input: str
    alerts: str
    dlq: str
    group: str

    @property
    def feedback(self) -> str:
        """The feedback topic, named after the alerts topic as the default is."""
        return f"{self.alerts}.feedback"


class Worker(WorkerProcess):
    """A worker on a test's fresh topics and group, with a short session timeout."""

    def __init__(self, broker_url: str, topics: Topics, log_path: Path,
                 config: Path | None = None,
                 quiet_flush_seconds: float = QUIET_FLUSH_SECONDS,
                 extra_options: dict[str, str] | None = None) -> None:
        super().__init__(
            ({"config": str(config)} if config is not None else {}) | (extra_options or {}) | {
                "broker": broker_url,
                "input-topic": topics.input,
                "alerts-topic": topics.alerts,
                "dlq-topic": topics.dlq,
                "feedback-topic": topics.feedback,
                "group-id": topics.group,
                "session-timeout-seconds": str(SESSION_TIMEOUT_SECONDS),
                "quiet-flush-seconds": str(quiet_flush_seconds),
                "data-dir": str(log_path.parent / "faust-data"),
            },
            log_path,
        )


def producer(broker_url: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap_of(broker_url), linger_ms=5)


def send_events(broker_url: str, topic: str, events: list[dict],  # type: ignore[type-arg]
                key: bytes) -> None:
    """Produce ``events`` to ``topic`` in order, all under ``key``, and wait until sent."""
    send = producer(broker_url)
    for event in events:
        send.send(topic, key=key, value=encode(event))
    send.flush()
    send.close()


def send_by_route(broker_url: str, topic: str,
                  events: list[dict]) -> None:  # type: ignore[type-arg]
    """Produce ``events`` in order, each under its routing key (its team, else its user),
    as a producer keyed the recommended way does; wait until sent."""
    send = producer(broker_url)
    for event in events:
        route = event.get("team") or event["user_id"]
        send.send(topic, key=str(route).encode(), value=encode(event))
    send.flush()
    send.close()


def read_topic(broker_url: str, topic: str, count: int, timeout_s: float = 60) -> list:  # type: ignore[type-arg]
    """Read until ``count`` records arrived, then 1 s more to catch any extra ones."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap_of(broker_url), auto_offset_reset="earliest",
        consumer_timeout_ms=1000, group_id=None,
    )  # fmt: skip
    records: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = list(consumer)  # stops after 1 s without a record
            records.extend(batch)
            if len(records) >= count and not batch:
                break
    finally:
        consumer.close()
    return records


START = datetime(2026, 11, 24, 9, tzinfo=UTC)


def steady_usage(user_id: str, count: int = 60, seed: int = 0) -> list[dict]:  # type: ignore[type-arg]
    """``count`` requests of ~1,000 tokens (+-10 %), one to five minutes apart.

    Irregular gaps and distinct prompts, like a person: perfectly periodic
    requests would rightly look scripted to the detectors.
    """
    rng = random.Random(f"{user_id}-{seed}")
    events, at = [], START
    for i in range(count):
        at += timedelta(seconds=rng.uniform(60, 300))
        events.append(
            {
                "event_id": f"{user_id}-{i}",
                "timestamp": at.isoformat(),
                "user_id": user_id,
                "team": "platform",
                "model": "claude-sonnet",
                "input_tokens": int(900 * rng.uniform(0.9, 1.1)),
                "output_tokens": int(100 * rng.uniform(0.9, 1.1)),
                "session_id": f"{user_id}-session-{i // 10}",
                "prompt_fingerprint": f"{rng.getrandbits(64):016x}",
            }
        )
    return events


def huge_request(user_id: str, minutes_after_start: int = 310) -> dict:  # type: ignore[type-arg]
    return {
        "event_id": f"{user_id}-huge",
        "timestamp": (START + timedelta(minutes=minutes_after_start)).isoformat(),
        "user_id": user_id,
        "team": "platform",
        "model": "claude-sonnet",
        "input_tokens": 200_000,
        "output_tokens": 500,
    }


def encode(event: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps(event).encode()


def child_pid_listening_on(url: str) -> int:
    """The PID of this process's child started with ``url``'s port (the Tansu we started)."""
    port = url.rsplit(":", 1)[1]
    me = os.getpid()
    children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    (pid,) = [int(child) for child in children
              if f"127.0.0.1:{port}" in Path(f"/proc/{child}/cmdline").read_text()]
    return pid
