"""tokenradar's worker against a bare Faust agent, on the same broker and events.

One run: start a broker (``TOKENRADAR_BROKER``, else Docker, else embedded Tansu),
produce N events once, then run, each in its own process and consumer group:

- the tokenradar worker (``python -m tokenradar.streams.worker``): parse, route, score,
  table writes, alerts;
- a bare Faust agent (this file with ``--bare-agent``): the same Faust settings
  (``tokenradar.streams.app.faust_options``) and batching (``take_events(batch_size,
  within=batch_seconds)``), doing only parse-and-count.

Both report progress through the same Prometheus counter, polled every 20 ms:
events/s is N over the time from first to last event counted; start-up is the
time from process start to the first event counted. Run::

    .venv/bin/python bench/bench_worker.py --events 50000 --users 500
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.request import urlopen

from prometheus_client.parser import text_string_to_metric_families

from tokenradar.lab.brokers import free_port, kafka_broker
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.broker import create_topics
from tokenradar.streams.publish import produce_events

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4
BATCH_SIZE, BATCH_SECONDS, SESSION_TIMEOUT = 1000, 0.2, 6.0
QUIET_FLUSH_SECONDS = 0.5


def synthetic_events(count: int, users: int, seed: int = 1) -> list[dict[str, object]]:
    """Steady usage over ``users``, a request every few minutes each; no anomalies needed."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    return [
        {
            "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "timestamp": (start + timedelta(seconds=i * 600 / users)).isoformat(),
            "user_id": f"user-{i % users:05d}",
            "team": f"team-{i % users % 10}",
            "model": "claude-sonnet",
            "input_tokens": int(rng.lognormvariate(7, 0.5)),
            "output_tokens": int(rng.lognormvariate(5, 0.5)),
            "session_id": f"s-{i % users}-{i // (users * 20)}",
        }
        for i in range(count)
    ]


def run_bare_agent(broker: str, topic: str, group: str, metrics_port: int) -> None:
    """A Faust app with one agent that parses each event and counts it: the floor."""
    import faust

    from tokenradar.schemas import InvalidEvent, WorkerSettings, parse_event
    from tokenradar.streams.app import faust_options
    from tokenradar.streams.metrics import WorkerMetrics

    settings = WorkerSettings(
        broker=broker, input_topic=topic, group_id=group, batch_size=BATCH_SIZE,
        batch_seconds=BATCH_SECONDS, session_timeout_seconds=SESSION_TIMEOUT,
        data_dir=Path(tempfile.mkdtemp(prefix="bare-faust-")),
    )  # fmt: skip
    metrics = WorkerMetrics()
    metrics.serve(metrics_port)
    app = faust.App(group, **faust_options(settings, PARTITIONS))
    source = app.topic(topic, value_type=bytes, value_serializer="raw", key_serializer="raw")

    @app.agent(source)
    async def parse_and_count(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(BATCH_SIZE, within=BATCH_SECONDS)  # type: ignore[attr-defined]
        async for batch in batches:
            for event in batch:
                with contextlib.suppress(InvalidEvent):  # the worker dead-letters these
                    parse_event(event.message.value or b"")
            metrics.events.labels("scored").inc(len(batch))

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def measure(command: list[str], metrics_port: int, total: int, log: Path) -> dict[str, float]:
    """Start ``command``, poll its counter until ``total``, stop it by PID."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    first = last = 0.0
    try:
        while True:
            counted = _counted(metrics_port)
            now = time.perf_counter()
            if counted and not first:
                first = now
            if counted >= total:
                last = now
                break
            if process.poll() is not None or now - started > 600:
                raise RuntimeError(f"{command[1:3]} stopped short at {counted}: see {log}")
            time.sleep(0.02)
        means = {
            name: _histogram_mean(metrics_port, f"tokenradar_{name}")
            for name in ("state_bytes", "batch_events", "batch_seconds")
        }
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return {
        "startup_s": first - started,
        "events_per_s": total / max(last - first, 1e-9),
        **means,
    }


def _samples(port: int) -> dict[str, float]:
    try:
        text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
    except OSError:
        return {}
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _counted(port: int) -> float:
    return sum(v for k, v in _samples(port).items() if k.startswith("tokenradar_events_total"))


def _histogram_mean(port: int, name: str) -> float:
    samples = _samples(port)
    count = samples.get(f"{name}_count{{}}", 0.0)
    return samples.get(f"{name}_sum{{}}", 0.0) / count if count else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--bare-agent", nargs=4, metavar=("BROKER", "TOPIC", "GROUP", "PORT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.bare_agent:
        broker, topic, group, port = args.bare_agent
        run_bare_agent(broker, topic, group, int(port))
        return

    with kafka_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic, tag = f"bench-usage-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
        create_topics(broker, [topic], PARTITIONS)
        produce_events(bootstrap_of(broker), topic, synthetic_events(args.events, args.users))
        port = free_port()
        worker = measure(
            [sys.executable, "-m", "tokenradar.streams.worker", "--broker", broker,
             "--input-topic", topic, "--alerts-topic", f"bench-alerts-{tag}",
             "--dlq-topic", f"bench-dlq-{tag}", "--group-id", f"bench-worker-{tag}",
             "--batch-size", str(BATCH_SIZE), "--batch-seconds", str(BATCH_SECONDS),
             "--session-timeout-seconds", str(SESSION_TIMEOUT), "--data-dir", tmp,
             # the last reorder window's events are scored once the input went quiet
             "--quiet-flush-seconds", str(QUIET_FLUSH_SECONDS),
             "--metrics-port", str(port)],
            port, args.events, Path(tmp) / "worker.log",
        )  # fmt: skip
        port = free_port()
        bare = measure(
            [sys.executable, str(Path(__file__)), "--bare-agent", broker, topic,
             f"bench-bare-{tag}", str(port)],
            port, args.events, Path(tmp) / "bare.log",
        )  # fmt: skip
    print(
        f"{args.events:,} events, {args.users:,} users, {PARTITIONS} partitions, "
        f"batches of {BATCH_SIZE} / {BATCH_SECONDS} s, session timeout {SESSION_TIMEOUT} s"
    )
    print(f"{'':34}{'tokenradar worker':>20}{'bare Faust parse+count':>26}{'ratio':>8}")
    for label, key in (("events/s", "events_per_s"), ("start -> first event (s)", "startup_s")):
        print(f"{label:34}{worker[key]:>20,.1f}{bare[key]:>26,.1f}{worker[key] / bare[key]:>8.2f}")
    print(f"{'state bytes per user (mean write)':34}{worker['state_bytes']:>20,.0f}")
    print(f"{'events per batch (mean)':34}{worker['batch_events']:>20,.0f}")
    print(f"{'seconds per batch (mean)':34}{worker['batch_seconds']:>20,.4f}")


if __name__ == "__main__":
    main()
