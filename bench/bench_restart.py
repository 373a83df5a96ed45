"""How long a worker takes to resume with many users' state: started cold, and restarted
after kill -9.

One run: a broker (``TOKENRADAR_BROKER``, else Docker, else embedded Tansu), a changelog
holding U users' states (teams of 50; each user a copy, under its own name, of one
person's state after a simulated week, about what a real one weighs) and their teams'
states, written straight to the changelog topic where the worker's table reads it.
Then:

1. a worker starts on it: seconds to "ready" (the table recovered) and to the first
   event taken; the event is a user's last one sent again, which only the restored
   state recognises as a duplicate, so it also proves the state came back;
2. that worker is killed (SIGKILL) and a second one started: the same two figures,
   now with the dead member's session to wait out (``--session-timeout``, 6 s).

Run::

    .venv/bin/python bench/bench_restart.py --users 100000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaProducer

from tokenradar.detectors import ScoringEngine, TeamState, UserState
from tokenradar.lab.brokers import kafka_broker
from tokenradar.lab.process import WorkerProcess, wait_until
from tokenradar.schemas import DetectorConfig, TokenUsageEvent
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.batch import partition_for, team_state_key, user_state_key
from tokenradar.streams.broker import create_topics

PARTITIONS = 4
TEAM_SIZE = 50
SESSION_TIMEOUT = 6.0
QUIET_FLUSH_SECONDS = 0.5
"""The probe waits this long in its reorder buffer: not part of resuming."""
MIB = 1024 * 1024


def template_states() -> tuple[UserState, TeamState, dict[str, object]]:
    """One person's state after a working week (about 300 requests), their team's, and
    their last event (to send again)."""
    engine = ScoringEngine(DetectorConfig())
    user, team = engine.new_state("template"), engine.new_team_state("team-template")
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    event: dict[str, object] = {}
    for number in range(300):
        at += timedelta(minutes=7 + number % 5) if number % 60 else timedelta(hours=15)
        event = {"event_id": f"req-{number:05d}", "timestamp": at.isoformat(),
                 "user_id": "template", "team": "team-template", "model": "claude-sonnet",
                 "input_tokens": 1800 + 37 * (number % 11), "output_tokens": 400,
                 "session_id": f"s-{number // 12}", "prompt_fingerprint": f"{number:016x}"}
        engine.score_event(user, TokenUsageEvent.model_validate(event), at, team_state=team)
    return user, team, event


def write_changelog(url: str, topic: str, users: int) -> tuple[float, int]:
    """Each user's and team's state as the worker's table stores them; (MiB, records)."""
    user, team, _ = template_states()
    create_topics(url, [topic], PARTITIONS, extra_configs={"cleanup.policy": "compact"})
    producer = KafkaProducer(bootstrap_servers=bootstrap_of(url), linger_ms=20,
                             batch_size=512 * 1024, max_request_size=4 * MIB)
    written = records = 0
    for number in range(users):
        name, route = f"user-{number:06d}", f"team-{number // TEAM_SIZE:04d}"
        user.user_id, user.team = name, route
        value = user.to_bytes()
        if number % TEAM_SIZE == 0:
            team.team = route
            producer.send(topic, key=team_state_key(route), value=team.to_bytes(),
                          partition=partition_for(route, PARTITIONS))
            records += 1
        producer.send(topic, key=user_state_key(route, name), value=value,
                      partition=partition_for(route, PARTITIONS))
        written += len(value)
        records += 1
    producer.flush()
    producer.close()
    return written / MIB, records


def resume(url: str, names: dict[str, str], folder: Path, probe_user: int,
           ) -> tuple[WorkerProcess, float, float]:
    """Start a worker, send the probe once it is ready; (worker, s to ready, s to probe)."""
    _, _, last = template_states()
    name, route = f"user-{probe_user:06d}", f"team-{probe_user // TEAM_SIZE:04d}"
    started = time.monotonic()
    log = folder / f"worker-{probe_user}.log"
    worker = WorkerProcess(names | {"session-timeout-seconds": str(SESSION_TIMEOUT),
                                    "quiet-flush-seconds": str(QUIET_FLUSH_SECONDS),
                                    "data-dir": str(folder / "faust-data")}, log)
    wait_until(lambda: "tokenradar worker ready" in log.read_text(), 900, worker.describe)
    ready = time.monotonic() - started
    producer = KafkaProducer(bootstrap_servers=bootstrap_of(url))
    probe = last | {"user_id": name, "team": route}
    producer.send(names["input-topic"], key=route.encode(), value=json.dumps(probe).encode(),
                  partition=partition_for(route, PARTITIONS))
    producer.flush()
    producer.close()
    wait_until(lambda: worker.events("duplicate") >= 1 or worker.scored() >= 1, 900,
               worker.describe)
    taken = time.monotonic() - started
    # The probe, and a probe sent before a kill and read again: duplicates, each (by
    # event id, or by offset), and nothing scored, if every state came back.
    wait_until(lambda: worker.held() == 0, 60, worker.describe)
    time.sleep(2 * QUIET_FLUSH_SECONDS)
    assert worker.events("duplicate") >= 1 and worker.scored() == 0, (
        f"{name}'s state was not restored: {worker.outcomes()}")
    return worker, ready, taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    names = {"input-topic": f"restart-{tag}", "alerts-topic": f"alerts-{tag}",
             "dlq-topic": f"dlq-{tag}", "group-id": f"restart-{tag}"}
    with kafka_broker() as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names["broker"] = url
        create_topics(url, [names["input-topic"]], PARTITIONS)
        began = time.monotonic()
        mib, records = write_changelog(url, f"{names['group-id']}-user-state-changelog",
                                       args.users)
        print(f"{args.users:,} users: {records:,} changelog records, {mib:,.0f} MiB of state "
              f"(written in {time.monotonic() - began:.0f} s)")
        first, ready, taken = resume(url, names, folder, probe_user=1)
        rss = first.metrics().get(("process_resident_memory_bytes", ()), 0.0) / MIB
        print(f"cold start: ready (table recovered) after {ready:.1f} s, first event taken "
              f"after {taken:.1f} s; resident memory {rss:,.0f} MiB")
        first.process.kill()  # SIGKILL by PID
        first.process.wait()
        second, ready, taken = resume(url, names, folder, probe_user=args.users - 1)
        print(f"after kill -9: ready after {ready:.1f} s, first event taken after "
              f"{taken:.1f} s (session timeout {SESSION_TIMEOUT:.0f} s)")
        second.stop()


if __name__ == "__main__":
    main()
