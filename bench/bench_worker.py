"""tokenradar's worker against a bare Faust agent, on the same broker and events.

One run: start a broker (``TOKENRADAR_BROKER``, else Docker, else embedded Tansu),
produce N events once, then, ``--rounds`` times in turn (this machine's speed varies:
compare within a round), run each candidate in its own process and consumer group:

- the tokenradar worker (``python -m tokenradar.streams.worker``): parse, route, score,
  states in the table and its changelog, alerts;
- a bare Faust agent (this file with ``--bare-agent``): the same Faust settings
  (``tokenradar.streams.app.faust_options``) and batching (``take_events(batch_size,
  within=batch_seconds)``), doing only parse-and-count;
- with ``--compare-source DIR``, the worker of another checkout (say, the release before a
  change), run from there.

Each round also times the scoring core alone on the same events, in this process
(``replay``'s path: parse, reorder, score, users beyond the live ones held encoded), so
the worker's CPU splits into scoring and the rest (Kafka, Faust, table, changelog).

Each reports progress through the same Prometheus counter, polled every 50 ms:
events/s is N over the time from first to last event counted, CPU s per 100k events
the process's CPU time (user + system, from /proc) over that same span; start-up is
the time from process start to the first event counted. Run::

    .venv/bin/python bench/bench_worker.py --events 100000 --users 10000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
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
BATCH_SIZE, BATCH_SECONDS, SESSION_TIMEOUT = 1000, 0.02, 6.0
QUIET_FLUSH_SECONDS = 0.5
POLL_SECONDS = 0.05
"""Often enough to time a run of seconds; rarely enough not to load the candidates."""


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


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID; SIGKILL if it has not exited within 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


def measure(command: list[str], metrics_port: int, total: int, log: Path,
            cwd: Path = REPO) -> dict[str, float]:
    """Start ``command``, poll its counter until ``total``, stop it by PID."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    first = last = 0.0
    cpu_first = cpu_last = 0.0
    try:
        while True:
            counted = _counted(metrics_port)
            now = time.perf_counter()
            if counted and not first:
                first, cpu_first = now, _cpu_seconds(process.pid)
            if counted >= total:
                last, cpu_last = now, _cpu_seconds(process.pid)
                break
            if process.poll() is not None or now - started > 900:
                raise RuntimeError(f"{command[1:3]} stopped short at {counted}: see {log}")
            time.sleep(POLL_SECONDS)
        means = {
            name: _histogram_mean(metrics_port, f"tokenradar_{name}")
            for name in ("state_bytes", "batch_events", "batch_seconds")
        }
    finally:
        stop(process)
    return {
        "startup_s": first - started,
        "events_per_s": total / max(last - first, 1e-9),
        "cpu_per_100k": (cpu_last - cpu_first) * 100_000 / total,
        **means,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc); NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _samples(port: int, *names: str) -> dict[str, float]:
    """The samples of ``names`` (the whole registry costs the candidate about 2 ms of CPU
    a scrape, 11% of the worker's CPU at 20 scrapes a second: this costs it little)."""
    query = "&".join(f"name[]={name}" for name in names)
    try:
        text = urlopen(f"http://127.0.0.1:{port}/metrics?{query}", timeout=1).read().decode()
    except OSError:
        return {}
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _counted(port: int) -> float:
    return sum(_samples(port, "tokenradar_events_total").values())


def _histogram_mean(port: int, name: str) -> float:
    samples = _samples(port, f"{name}_sum", f"{name}_count")
    count = samples.get(f"{name}_count{{}}", 0.0)
    return samples.get(f"{name}_sum{{}}", 0.0) / count if count else 0.0


def scoring_cpu_per_100k(events: list[dict[str, object]]) -> float:
    """CPU seconds per 100,000 events of the scoring core alone on ``events`` (replay's
    path, default config), in this process."""
    from tokenradar.detectors import ScoringEngine
    from tokenradar.replay import score_stream
    from tokenradar.schemas import DetectorConfig, parse_event

    raws = [json.dumps(event, separators=(",", ":")) for event in events]
    began = time.process_time()
    for _ in score_stream(((parse_event(raw.encode()), raw) for raw in raws),
                          ScoringEngine(DetectorConfig())):
        pass
    return (time.process_time() - began) * 100_000 / len(raws)


def worker_command(broker: str, topic: str, data_dir: Path, port: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [sys.executable, "-m", "tokenradar.streams.worker", "--broker", broker,
            "--input-topic", topic, "--alerts-topic", f"bench-alerts-{tag}",
            "--dlq-topic", f"bench-dlq-{tag}", "--group-id", f"bench-worker-{tag}",
            "--batch-size", str(BATCH_SIZE), "--batch-seconds", str(BATCH_SECONDS),
            "--session-timeout-seconds", str(SESSION_TIMEOUT), "--data-dir", str(data_dir),
            # the last reorder window's events are scored once the input went quiet
            "--quiet-flush-seconds", str(QUIET_FLUSH_SECONDS),
            "--metrics-port", str(port)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every candidate this many times, in turn")
    parser.add_argument("--compare-source", type=Path, metavar="DIR",
                        help="also run the worker of this checkout (its tokenradar/ package)")
    parser.add_argument("--bare-agent", nargs=4, metavar=("BROKER", "TOPIC", "GROUP", "PORT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.bare_agent:
        broker, topic, group, port = args.bare_agent
        run_bare_agent(broker, topic, group, int(port))
        return

    rounds: list[dict[str, dict[str, float]]] = []
    with kafka_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic = f"bench-usage-{uuid.uuid4().hex[:8]}"
        create_topics(broker, [topic], PARTITIONS)
        events = synthetic_events(args.events, args.users)
        produce_events(bootstrap_of(broker), topic, events)
        scoring: list[float] = []
        for number in range(args.rounds):
            found: dict[str, dict[str, float]] = {}
            data = Path(tmp) / f"round-{number}"
            data.mkdir()
            port = free_port()
            found["tokenradar worker"] = measure(
                worker_command(broker, topic, data / "worker", port), port, args.events,
                data / "worker.log")
            port = free_port()
            found["bare Faust parse+count"] = measure(
                [sys.executable, str(Path(__file__)), "--bare-agent", broker, topic,
                 f"bench-bare-{uuid.uuid4().hex[:8]}", str(port)],
                port, args.events, data / "bare.log",
            )  # fmt: skip
            if args.compare_source:
                port = free_port()
                found[f"worker of {args.compare_source.name}"] = measure(
                    worker_command(broker, topic, data / "compared", port), port,
                    args.events, data / "compared.log", cwd=args.compare_source.resolve())
            rounds.append(found)
            scoring.append(scoring_cpu_per_100k(events))
    print(
        f"{args.events:,} events, {args.users:,} users, {PARTITIONS} partitions, "
        f"batches of {BATCH_SIZE} / {BATCH_SECONDS} s, session timeout {SESSION_TIMEOUT} s"
    )
    print(f"{'round':<6}{'':30}{'events/s':>10}{'x bare':>8}{'CPU s/100k':>12}"
          f"{'start (s)':>11}{'state B':>9}{'batch':>7}")
    for number, found in enumerate(rounds, 1):
        bare = found["bare Faust parse+count"]["events_per_s"]
        for name, figures in found.items():
            state = f"{figures['state_bytes']:,.0f}" if figures["state_bytes"] else "-"
            batch = f"{figures['batch_events']:,.0f}" if figures["batch_events"] else "-"
            print(f"{number:<6}{name:30}{figures['events_per_s']:>10,.0f}"
                  f"{figures['events_per_s'] / bare:>8.2f}{figures['cpu_per_100k']:>12.1f}"
                  f"{figures['startup_s']:>11.1f}{state:>9}{batch:>7}")
        worker = found["tokenradar worker"]["cpu_per_100k"]
        print(f"{'':6}{'of which scoring core alone':30}{'':18}{scoring[number - 1]:>12.1f}"
              f"   the rest: {worker - scoring[number - 1]:.1f} s")


if __name__ == "__main__":
    main()
