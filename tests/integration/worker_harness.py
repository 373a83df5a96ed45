"""Running a worker as a subprocess against a real broker, and the events tests send it."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import bootstrap_of, free_port

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 4
SESSION_TIMEOUT_SECONDS = 6  # Tansu forms a group after half of it: keeps tests short


@dataclass(frozen=True)
class Topics:
    input: str
    alerts: str
    dlq: str
    group: str


class Worker:
    """``python -m streams.worker`` in a subprocess; its metrics on a free local port."""

    def __init__(self, broker_url: str, topics: Topics, log_path: Path) -> None:
        self.metrics_port = free_port()
        self.log_path = log_path
        command = [
            sys.executable, "-m", "streams.worker",
            "--broker", broker_url,
            "--input-topic", topics.input,
            "--alerts-topic", topics.alerts,
            "--dlq-topic", topics.dlq,
            "--group-id", topics.group,
            "--session-timeout-seconds", str(SESSION_TIMEOUT_SECONDS),
            "--data-dir", str(log_path.parent / "faust-data"),
            "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Current samples, keyed by (name, sorted labels); empty if not up yet."""
        try:
            text = urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read()
        except (URLError, OSError):
            return {}
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text.decode())
            for sample in family.samples
        }

    def events(self, outcome: str) -> float:
        return self.metrics().get(("tokenradar_events_total", (("outcome", outcome),)), 0.0)

    def wait_for_events(self, outcome: str, count: int, timeout_s: float = 60) -> None:
        wait_until(lambda: self.events(outcome) >= count, timeout_s, self.describe)

    def describe(self) -> str:
        """Counts, and the log with every task's stack (SIGUSR1 makes Faust's worker
        print them), so a stuck worker shows where it waits."""
        counts = {o: self.events(o) for o in ("scored", "duplicate", "rekeyed", "dead_lettered")}
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1)
        log_tail = self.log_path.read_text(errors="replace")[-12000:]
        return f"worker counts {counts}; log tail:\n{log_tail}"

    def stop(self) -> None:
        """SIGTERM this worker by PID (Faust shuts down cleanly), kill if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until(
    condition: Callable[[], bool], timeout_s: float, describe: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {describe()}")
        time.sleep(0.2)


def producer(broker_url: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap_of(broker_url), linger_ms=5)


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
