"""A worker's resident memory against the number of users it holds: what
deploy/k8s/deployment.yaml's memory request and limit are derived from.

For each user count U: a fresh topic and group on one broker (``TOKENRADAR_BROKER``,
else Docker, else embedded Tansu), one worker started on the empty topic (its RSS
once ready is the base), then ``per-user`` steady events for each of U users (as
bench_worker.py makes them); the RSS once every event is counted, read from the
worker's own ``process_resident_memory_bytes``. Run::

    .venv/bin/python bench/bench_memory.py --users 2000 10000 --per-user 30
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from bench_worker import PARTITIONS, SESSION_TIMEOUT, synthetic_events

from tokenradar.lab.brokers import kafka_broker
from tokenradar.lab.process import WorkerProcess, wait_until
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.broker import create_topics
from tokenradar.streams.publish import produce_events

MIB = 1024 * 1024


def measure(url: str, users: int, per_user: int, folder: Path) -> tuple[float, float, float]:
    """(RSS ready and empty, RSS with ``users`` users' state, seconds to process) in MiB."""
    tag = uuid.uuid4().hex[:8]
    topic, group = f"memory-{tag}", f"memory-{tag}"
    create_topics(url, [topic], PARTITIONS)
    options = {"broker": url, "input-topic": topic, "group-id": group,
               "alerts-topic": f"alerts-{tag}", "dlq-topic": f"dlq-{tag}",
               "session-timeout-seconds": str(SESSION_TIMEOUT),
               "data-dir": str(folder / tag)}
    with WorkerProcess(options, folder / f"worker-{tag}.log") as worker:
        wait_until(lambda: worker.probe("/readyz")[0] == 200, 120, worker.describe)
        base = worker.metrics()[("process_resident_memory_bytes", ())] / MIB
        count = produce_events(bootstrap_of(url), topic,
                               synthetic_events(users * per_user, users))
        started = time.perf_counter()
        wait_until(lambda: sum(worker.outcomes().values()) >= count, 1800, worker.describe)
        seconds = time.perf_counter() - started
        loaded = worker.metrics()[("process_resident_memory_bytes", ())] / MIB
    return base, loaded, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--per-user", type=int, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    rows = []
    with kafka_broker() as url:
        for users in args.users:
            base, loaded, seconds = measure(url, users, args.per_user, folder)
            rows.append((users, base, loaded))
            print(f"{users:>7,} users x {args.per_user} events: RSS {base:6.1f} MiB ready, "
                  f"{loaded:6.1f} MiB after ({seconds:.0f} s to process)", flush=True)
    if len(rows) >= 2:
        (u0, _, m0), (u1, _, m1) = rows[0], rows[-1]
        print(f"slope: {(m1 - m0) * 1024 / (u1 - u0):.1f} KiB of RSS per user")


if __name__ == "__main__":
    main()
