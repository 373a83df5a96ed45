"""Issue 15's pipeline table: the tokenradar worker beside three baselines, on the same
broker and events, each in its own process and consumer group:

- ``raw loop``: an aiokafka consumer loop doing the same per-event work as the agents
  (parse the event, update the user's exponentially weighted mean and variance of
  tokens in a dict): the Python limit;
- ``bare agent``: bench_worker.py's Faust agent that parses and counts;
- ``table agent``: the same Faust agent keeping the exponentially weighted state in a
  Faust Table (read, update, write back per event, changelog included);
- ``worker``: ``python -m tokenradar.streams.worker``.

Every pipeline counts through the same Prometheus counter (polled every 20 ms) and is
watched from outside through ``/proc``: steady events/s from the first event counted
to the last; CPU seconds between the two, per 100,000 events; peak RSS (``VmHWM``);
resident memory per user: RSS once all events are counted less RSS just before the
first, over the users. Rounds are interleaved (worker, bare, table, raw, worker...)
because this machine's speed drifts. Run::

    .venv/bin/python bench/pipelines.py --events 100000 --users 10000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench_worker import (
    BATCH_SECONDS,
    BATCH_SIZE,
    PARTITIONS,
    QUIET_FLUSH_SECONDS,
    SESSION_TIMEOUT,
    _counted,
    _histogram_mean,
    run_bare_agent,
    stop,
    synthetic_events,
)

from tokenradar.lab.brokers import free_port, kafka_broker
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.broker import create_topics
from tokenradar.streams.publish import produce_events

REPO = Path(__file__).resolve().parents[1]
PIPELINES = ("worker", "bare agent", "table agent", "raw loop")
BEFORE = "worker before"
"""The worker of another commit (``--before``), run from its own source tree."""
EW_WEIGHT = 0.02
"""Weight of each new request in the baselines' per-user exponentially weighted state."""
SPIKE_RATIO, SPIKE_HISTORY = 10.0, 30
"""The raw loop's alert rule (latency bench): 10x the user's mean after 30 requests,
like the spike detector's single-request rule."""
EW_RECORD = struct.Struct("<ddI")
"""mean, variance, count: the baselines' whole per-user state (20 bytes)."""
MIB = 1024 * 1024


def ew_update(state: tuple[float, float, int] | None, tokens: float) -> tuple[float, float, int]:
    """One exponentially weighted mean and variance step (West's incremental form)."""
    if state is None:
        return tokens, 0.0, 1
    mean, variance, count = state
    delta = tokens - mean
    mean += EW_WEIGHT * delta
    variance = (1 - EW_WEIGHT) * (variance + EW_WEIGHT * delta * delta)
    return mean, variance, count + 1


@dataclass
class Run:
    """One pipeline's figures from one run."""

    pipeline: str
    startup_s: float
    """Process start to its first event counted."""
    events_per_s: float
    cpu_s_per_100k: float
    peak_rss_mib: float
    rss_per_user_kib: float
    state_bytes: float = 0.0
    """Mean size of a user's stored state (the worker's own histogram; 0 if none)."""


class ProcStat:
    """CPU seconds and resident memory of one process, read from ``/proc``."""

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.TICKS  # utime + stime

    def memory_mib(self, field: str) -> float:
        """``VmRSS`` (now) or ``VmHWM`` (peak) in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise KeyError(field)


def watch(process: subprocess.Popen[bytes], name: str, port: int, total: int, users: int,
          log: Path, timeout_s: float = 900) -> Run:
    """Poll ``process``'s counter until ``total`` events are counted, then stop it by PID."""
    started = time.perf_counter()
    stat = ProcStat(process.pid)
    first = last = cpu_first = 0.0
    rss_before = 0.0
    try:
        while True:
            counted = _counted(port)
            now = time.perf_counter()
            if counted and not first:
                first, cpu_first = now, stat.cpu_seconds()
            elif not first:  # (a poll that fails also reads 0)
                with contextlib.suppress(OSError):
                    rss_before = stat.memory_mib("VmRSS")
            if counted >= total:
                last = now
                break
            if process.poll() is not None or now - started > timeout_s:
                raise RuntimeError(f"{name} stopped short at {counted:,.0f}: see {log}")
            time.sleep(0.02)
        cpu = stat.cpu_seconds() - cpu_first
        rss_after, peak = stat.memory_mib("VmRSS"), stat.memory_mib("VmHWM")
        state_bytes = _histogram_mean(port, "tokenradar_state_bytes")
    finally:
        stop(process)
    # all counted within one poll (a fast pipeline, few events): a poll's time at least
    return Run(name, first - started, total / max(last - first, 0.02), cpu * 100_000 / total,
               peak, (rss_after - rss_before) * 1024 / users, state_bytes)


def worker_options(broker: str, topic: str, tag: str, data_dir: Path) -> list[str]:
    """The worker's command-line options as bench_worker.py runs it."""
    return ["--broker", broker, "--input-topic", topic, "--alerts-topic", f"bench-alerts-{tag}",
            "--dlq-topic", f"bench-dlq-{tag}", "--group-id", f"bench-worker-{tag}",
            "--batch-size", str(BATCH_SIZE), "--batch-seconds", str(BATCH_SECONDS),
            "--session-timeout-seconds", str(SESSION_TIMEOUT), "--data-dir", str(data_dir),
            # the last reorder window's events are scored once the input went quiet
            "--quiet-flush-seconds", str(QUIET_FLUSH_SECONDS)]


def start(pipeline: str, broker: str, topic: str, port: int, folder: Path,
          extra: tuple[str, ...] = (), before: Path | None = None,
          ) -> tuple[subprocess.Popen[bytes], Path]:
    """Start one pipeline in its own process and consumer group; (process, its log).

    ``before``: the source tree :data:`BEFORE` runs from (put first on ``PYTHONPATH``,
    ahead of this checkout's editable install).
    """
    tag = uuid.uuid4().hex[:8]
    env = None
    if pipeline == BEFORE:
        assert before is not None, "the worker before needs its source tree"
        env = os.environ | {"PYTHONPATH": str(before)}
    if pipeline in ("worker", BEFORE):
        command = [sys.executable, "-m", "tokenradar.streams.worker", "--metrics-port", str(port),
                   *worker_options(broker, topic, tag, folder / tag), *extra]
    else:
        mode = {"bare agent": "--bare-agent", "table agent": "--table-agent",
                "raw loop": "--raw-loop"}[pipeline]
        command = [sys.executable, str(Path(__file__).resolve()), mode, broker, topic,
                   f"bench-{mode[2:]}-{tag}", str(port), *extra]
    log = folder / f"{pipeline.replace(' ', '-')}-{tag}.log"
    # ``-m`` imports from the working directory first: only the worker before runs there
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=before if pipeline == BEFORE else REPO,
                                   stdout=out, env=env,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return process, log


def source_tree(commit: str, folder: Path) -> Path:
    """``commit``'s files (``git archive``) in a new folder under ``folder``."""
    tree = folder / f"tree-{commit[:12]}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def run_table_agent(broker: str, topic: str, group: str, metrics_port: int) -> None:
    """The bare agent plus each user's exponentially weighted state in a Faust Table."""
    import faust

    from tokenradar.schemas import InvalidEvent, WorkerSettings, parse_event
    from tokenradar.streams.app import faust_options
    from tokenradar.streams.batch import partition_for
    from tokenradar.streams.metrics import WorkerMetrics

    class UserTable(faust.Table[bytes, bytes]):
        def partition_for_key(self, key: bytes) -> int:  # any event of the batch is current
            return partition_for(key.decode(), PARTITIONS)

    settings = WorkerSettings(
        broker=broker, input_topic=topic, group_id=group, batch_size=BATCH_SIZE,
        batch_seconds=BATCH_SECONDS, session_timeout_seconds=SESSION_TIMEOUT,
        data_dir=Path(tempfile.mkdtemp(prefix="table-faust-")),
    )  # fmt: skip
    create_topics(broker, [f"{group}-ew-state-changelog"], PARTITIONS,
                  extra_configs={"cleanup.policy": "compact"})
    metrics = WorkerMetrics()
    metrics.serve(metrics_port)
    app = faust.App(group, **faust_options(settings, PARTITIONS))
    source = app.topic(topic, value_type=bytes, value_serializer="raw", key_serializer="raw")
    table = UserTable(app, name="ew-state", beacon=app.tables.beacon, partitions=PARTITIONS,
                      key_type=bytes, value_type=bytes)
    app.tables.add(table)

    @app.agent(source)
    async def score(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(BATCH_SIZE, within=BATCH_SECONDS)  # type: ignore[attr-defined]
        async for batch in batches:
            for event in batch:
                with contextlib.suppress(InvalidEvent):
                    usage = parse_event(event.message.value or b"")
                    key = usage.user_id.encode()
                    stored = table.get(key)
                    state = ew_update(EW_RECORD.unpack(stored) if stored else None,
                                      usage.input_tokens + usage.output_tokens)
                    table[key] = EW_RECORD.pack(*state)
            metrics.events.labels("scored").inc(len(batch))

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def run_raw_loop(broker: str, topic: str, group: str, metrics_port: int,
                 alerts_topic: str | None = None) -> None:
    """An aiokafka consumer loop: parse, per-user exponentially weighted state in a dict.

    With ``alerts_topic``, an event of 10 times its user's mean after 30 requests is
    published there as ``{"event_ids": [id]}`` (the latency bench's floor).
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from tokenradar.schemas import InvalidEvent, parse_event
    from tokenradar.streams.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    metrics.serve(metrics_port)
    states: dict[str, tuple[float, float, int]] = {}
    bootstrap = bootstrap_of(broker)

    async def loop() -> None:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
            session_timeout_ms=int(SESSION_TIMEOUT * 1000), heartbeat_interval_ms=2000,
            max_poll_records=BATCH_SIZE, fetch_max_wait_ms=20)  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await consumer.start()
        await producer.start()
        stopping = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        try:
            while not stopping.is_set():
                fetched = await consumer.getmany(timeout_ms=200, max_records=BATCH_SIZE)
                for records in fetched.values():
                    for record in records:
                        with contextlib.suppress(InvalidEvent):
                            usage = parse_event(record.value or b"")
                            tokens = usage.input_tokens + usage.output_tokens
                            before = states.get(usage.user_id)
                            states[usage.user_id] = ew_update(before, tokens)
                            if (alerts_topic and before and before[2] >= SPIKE_HISTORY
                                    and tokens >= SPIKE_RATIO * before[0]):
                                alert = b'{"event_ids":["%s"]}' % usage.event_id.encode()
                                await producer.send(alerts_topic, alert)
                    metrics.events.labels("scored").inc(len(records))
        finally:
            await producer.stop()
            await consumer.stop()

    asyncio.run(loop())


def compare(broker: str, events: int, users: int, rounds: int, folder: Path,
            pipelines: tuple[str, ...] = PIPELINES, before: Path | None = None,
            ) -> dict[str, list[Run]]:
    """Produce the events once; run each pipeline ``rounds`` times, interleaved."""
    topic = f"bench-usage-{uuid.uuid4().hex[:8]}"
    create_topics(broker, [topic], PARTITIONS)
    produce_events(bootstrap_of(broker), topic, synthetic_events(events, users))
    runs: dict[str, list[Run]] = {name: [] for name in pipelines}
    for _ in range(rounds):
        for name in pipelines:
            port = free_port()
            process, log = start(name, broker, topic, port, folder, before=before)
            runs[name].append(watch(process, name, port, events, users, log))
            print(f"  {name}: {runs[name][-1]}", flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", metavar="COMMIT",
                        help="also run the worker of this commit (e.g. e252902)")
    for mode in ("--table-agent", "--raw-loop", "--bare-agent"):
        parser.add_argument(mode, nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_agent:
        broker, topic, group, port = args.bare_agent
        run_bare_agent(broker, topic, group, int(port))
    elif args.table_agent:
        broker, topic, group, port = args.table_agent
        run_table_agent(broker, topic, group, int(port))
    elif args.raw_loop:
        broker, topic, group, port, *alerts = args.raw_loop
        run_raw_loop(broker, topic, group, int(port), *alerts)
    else:
        with kafka_broker() as broker, tempfile.TemporaryDirectory() as tmp:
            before = source_tree(args.before, Path(tmp)) if args.before else None
            runs = compare(broker, args.events, args.users, args.rounds, Path(tmp),
                           PIPELINES + ((BEFORE,) if before else ()), before)
        print(f"{args.events:,} events, {args.users:,} users, {PARTITIONS} partitions")
        print(f"{'pipeline':14}{'events/s':>20}{'CPU s/100k':>16}{'peak RSS MiB':>16}"
              f"{'KiB/user':>14}{'start s':>14}")
        for name, done in runs.items():
            def cell(key: str, form: str, done: list[Run] = done) -> str:
                return " / ".join(format(getattr(run, key), form) for run in done)
            print(f"{name:14}{cell('events_per_s', ',.0f'):>20}{cell('cpu_s_per_100k', '.1f'):>16}"
                  f"{cell('peak_rss_mib', '.0f'):>16}{cell('rss_per_user_kib', '.1f'):>14}"
                  f"{cell('startup_s', '.1f'):>14}")


if __name__ == "__main__":
    main()
