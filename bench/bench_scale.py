"""Scale out: two workers on 8 partitions against one, and a worker added and removed
mid-run with nothing lost.

On one broker (``TOKENRADAR_BROKER``, else Docker, else embedded Tansu), an 8-partition
topic of ``--events`` steady events (bench_worker.py's usage, its users in 64 teams so
the routing keys spread over the partitions) and ``INVALID`` unparseable messages:

1. throughput: one worker, then two started together, each set in a fresh consumer group
   reading the whole topic (``--rounds`` times, interleaved). Events/s are counted while
   every worker of the set takes events: from the moment the last of them took its first
   to the moment the set reached 90% of the messages (the start and the group's forming
   left out, and the tail, where one worker may run dry before the other). Over that same
   span, the CPU seconds of each worker and of the embedded broker (``/proc``) and of the
   whole machine (``/proc/stat``: every process, this benchmark's and others'), so that
   what a second worker can add is judged against the CPU there was: two workers can take
   at most (cores - what the rest of the machine used) / (worker + broker CPU per event);
2. a worker added and one removed mid-run, on a fresh topic: a third of the messages
   sent, worker A started; once A took half of them, worker B started and, once it is
   in the group, the second third sent; once B took messages, A stopped (SIGTERM: it
   leaves the group) and the last third sent. Then, read from Kafka: every user's events
   taken (the ``events`` count of its state in the changelog) and the dead letters
   (distinct input offsets) against the messages sent; messages read twice (after the
   rebalances) are dropped by offset, counted by the workers as duplicates. Run::

    .venv/bin/python bench/bench_scale.py --events 40000 --users 4000
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_worker import BATCH_SECONDS, BATCH_SIZE, QUIET_FLUSH_SECONDS, SESSION_TIMEOUT
from bench_worker import synthetic_events as steady_usage
from kafka import KafkaConsumer, KafkaProducer
from pipelines import ProcStat

from tokenradar.detectors import UserState
from tokenradar.lab.brokers import kafka_broker
from tokenradar.lab.process import WorkerProcess, wait_until
from tokenradar.schemas import DeadLetter
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.batch import is_user_state_key
from tokenradar.streams.broker import create_topics
from tokenradar.streams.publish import produce_events

PARTITIONS = 8
TEAMS = 64
INVALID = 20
"""Unparseable messages among the events: each must come out as one dead letter."""


@dataclass
class Accounting:
    """What the join-and-leave run left in Kafka, against what was sent."""

    sent: int
    scored: int
    """Events the users' states took (each state counts its own)."""
    dead_lettered: int
    read_again: float
    """Messages the workers dropped as duplicates (their metrics): read again after a
    rebalance."""

    @property
    def nothing_lost(self) -> bool:
        return self.scored + self.dead_lettered == self.sent and self.dead_lettered == INVALID


@dataclass
class Throughput:
    """One set of workers' events/s, and the CPU seconds spent over the same span."""

    workers: int
    events_per_s: float
    events: float
    seconds: float
    worker_cpu: list[float]
    broker_cpu: float
    """The embedded broker's (nan for a broker not started by this process)."""
    machine_cpu: float
    """Every process's on the machine (all cores), this benchmark's included."""

    def __str__(self) -> str:
        per_event = 1e6 / self.events
        cores = os.cpu_count() or 1
        ours = sum(self.worker_cpu) + (0 if math.isnan(self.broker_cpu) else self.broker_cpu)
        others = max(0.0, self.machine_cpu - ours) / self.seconds
        cost = ours / self.events  # CPU s an event takes, worker and broker
        bound = (cores - others) / cost if cost else math.inf
        workers = " + ".join(f"{cpu / self.seconds:.2f}" for cpu in self.worker_cpu)
        return (f"{self.workers} worker(s) {self.events_per_s:,.0f} events/s; CPU per event: "
                f"worker(s) {sum(self.worker_cpu) * per_event:,.0f} us, broker "
                f"{self.broker_cpu * per_event:,.0f} us; cores busy: worker(s) {workers}, "
                f"broker {self.broker_cpu / self.seconds:.2f}, the rest of the machine (this "
                f"benchmark, other work) "
                f"{others:.2f} of {cores}; at this cost the {cores - others:.2f} cores left "
                f"take at most {bound:,.0f} events/s")


def broker_pid() -> int | None:
    """The embedded broker's PID: this process's child running ``broker``, else None."""
    for task in Path("/proc/self/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"broker" in command[1:2]:
                return int(child)
    return None


def machine_cpu_seconds() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``), every process."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / ProcStat.TICKS


def usage(events: int, users: int) -> list[dict[str, object]]:
    """Steady usage, its users in ``TEAMS`` teams (the routing keys)."""
    spread = steady_usage(events, users)
    for event in spread:
        event["team"] = f"team-{int(str(event['user_id'])[5:]) % TEAMS:02d}"
    return spread


def send(broker: str, topic: str, events: Sequence[dict[str, object]], invalid: int = 0) -> None:
    produce_events(bootstrap_of(broker), topic, events)
    if invalid:
        producer = KafkaProducer(bootstrap_servers=bootstrap_of(broker))
        for number in range(invalid):
            producer.send(topic, key=f"team-{number:02d}".encode(), value=b"{not json")
        producer.flush()
        producer.close()


def worker(broker: str, topic: str, group: str, folder: Path) -> WorkerProcess:
    name = f"{group}-{uuid.uuid4().hex[:6]}"
    return WorkerProcess(
        {"broker": broker, "input-topic": topic, "group-id": group,
         "alerts-topic": f"{group}-alerts", "dlq-topic": f"{group}-dlq",
         "batch-size": str(BATCH_SIZE), "batch-seconds": str(BATCH_SECONDS),
         "session-timeout-seconds": str(SESSION_TIMEOUT),
         "quiet-flush-seconds": str(QUIET_FLUSH_SECONDS), "data-dir": str(folder / name)},
        folder / f"{name}.log")  # fmt: skip


def taken(workers: Sequence[WorkerProcess]) -> list[float]:
    return [sum(w.outcomes().values()) for w in workers]


def throughput(broker: str, topic: str, total: int, count: int, folder: Path) -> Throughput:
    """Events/s of ``count`` workers in a fresh group while all of them take events, and
    the CPU spent meanwhile."""
    group = f"scale-{count}-{uuid.uuid4().hex[:8]}"
    workers = [worker(broker, topic, group, folder) for _ in range(count)]
    stats = [ProcStat(each.process.pid) for each in workers]
    found = broker_pid()
    broker_stat = ProcStat(found) if found else None

    def cpu() -> tuple[list[float], float, float]:
        return ([stat.cpu_seconds() for stat in stats],
                broker_stat.cpu_seconds() if broker_stat else math.nan, machine_cpu_seconds())

    try:
        began = time.monotonic()
        while min(taken(workers)) == 0:
            if time.monotonic() - began > 300:
                raise RuntimeError(f"a worker took nothing: {workers[0].describe()}")
            time.sleep(0.05)
        start_at, start_count, start_cpu = time.monotonic(), sum(taken(workers)), cpu()
        while (done := sum(taken(workers))) < 0.9 * total:
            if time.monotonic() - began > 1800:
                raise RuntimeError(f"stopped at {done:,.0f}: {workers[0].describe()}")
            time.sleep(0.05)
        seconds, end_cpu = time.monotonic() - start_at, cpu()
        return Throughput(count, (done - start_count) / seconds, done - start_count, seconds,
                          [b - a for a, b in zip(start_cpu[0], end_cpu[0], strict=True)],
                          end_cpu[1] - start_cpu[1], end_cpu[2] - start_cpu[2])
    finally:
        for each in workers:
            each.stop()


def read_all(broker: str, topic: str) -> list:  # type: ignore[type-arg]
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap_of(broker), group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=1500,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    try:
        return list(consumer)
    finally:
        consumer.close()


def scored_in_changelog(broker: str, group: str) -> int:
    latest = {record.key: record.value
              for record in read_all(broker, f"{group}-user-state-changelog")}
    return sum(UserState.from_bytes(value).events for key, value in latest.items()
               if value is not None and is_user_state_key(key))


def join_and_leave(broker: str, events: list[dict[str, object]], folder: Path) -> Accounting:
    """Worker B added, worker A removed, while the messages come (see the docstring)."""
    tag = uuid.uuid4().hex[:8]
    topic, group = f"scale-join-{tag}", f"scale-join-{tag}"
    create_topics(broker, [topic], PARTITIONS)
    third = len(events) // 3
    sent = len(events) + INVALID
    send(broker, topic, events[:third], INVALID)
    first = worker(broker, topic, group, folder)
    second = None
    try:
        wait_until(lambda: taken([first])[0] >= third / 2, 900, first.describe)
        second = worker(broker, topic, group, folder)
        wait_until(lambda: "tokenradar worker ready" in second.log_path.read_text(), 300,
                   second.describe)  # in the group, with its share of the partitions
        send(broker, topic, events[third: 2 * third])
        wait_until(lambda: taken([second])[0] > 0, 300, second.describe)
        read_again = first.events("duplicate")  # A reads nothing more while it stops
        first.stop()  # leaves the group: B takes every partition
        send(broker, topic, events[2 * third:])
        wait_until(lambda: scored_in_changelog(broker, group) >= len(events), 900,
                   second.describe)
        time.sleep(2)  # a commit interval: anything read twice is counted by now
        read_again += second.events("duplicate")
        scored = scored_in_changelog(broker, group)
    finally:
        first.stop()
        if second:
            second.stop()
    letters = {(letter.source_partition, letter.source_offset)
               for letter in (DeadLetter.model_validate_json(record.value)
                              for record in read_all(broker, f"{group}-dlq"))}
    return Accounting(sent, scored, len(letters), read_again)


def compare(broker: str, events: list[dict[str, object]], rounds: int, folder: Path,
            ) -> tuple[list[Throughput], list[Throughput]]:
    """One worker and two, each round, on one topic of ``events``."""
    topic = f"scale-{uuid.uuid4().hex[:8]}"
    create_topics(broker, [topic], PARTITIONS)
    send(broker, topic, events, INVALID)
    one: list[Throughput] = []
    two: list[Throughput] = []
    for _ in range(rounds):
        one.append(throughput(broker, topic, len(events) + INVALID, 1, folder))
        two.append(throughput(broker, topic, len(events) + INVALID, 2, folder))
        print(f"  {one[-1]}\n  {two[-1]}\n  two workers / one: "
              f"{two[-1].events_per_s / one[-1].events_per_s:.2f}x", flush=True)
    return one, two


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--users", type=int, default=4_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    events = usage(args.events, args.users)
    with kafka_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        compare(broker, events, args.rounds, Path(tmp))
        print(join_and_leave(broker, events, Path(tmp)))


if __name__ == "__main__":
    main()
