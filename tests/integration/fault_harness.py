"""What the fault tests share: one organisation's events in two parts, what an
uninterrupted ``replay`` makes of them, and what a worker left behind in Kafka.

The accounting of a run is read from Kafka, not from a worker's counters (a worker
killed with SIGKILL takes its counters with it): the alerts topic, the dead-letter
topic, and the state table's changelog, whose users' and teams' final states must be
those ``replay`` ends with. A state holds how many events it took, its baselines and
its open incidents, so an event lost or taken twice shows there even when no alert
changes.
"""

from __future__ import annotations

import json
import random
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
from kafka import KafkaConsumer, TopicPartition
from worker_harness import producer

from tokenradar.detectors import ScoringEngine, TeamState, UserState, routing_key
from tokenradar.detectors.reorder import ReorderBuffer
from tokenradar.lab.process import WorkerProcess, wait_until
from tokenradar.lab.simulation import SimulationSpec, simulate
from tokenradar.replay import score_stream
from tokenradar.schemas import AnomalyEvent, DeadLetter, DetectorConfig, parse_event
from tokenradar.schemas.settings import bootstrap_of
from tokenradar.streams.batch import (
    BUFFER_SUFFIX,
    KEY_SEPARATOR,
    VERDICTS_SUFFIX,
    is_user_state_key,
)

INVALID = [b"not json", b'{"event_id": "x"}', b"\xff\xfe", b'{"user_id": 12}']
"""Messages that cannot be scored: each must reach the dead-letter topic once."""
CONFIG = """
[scoring]
# One event id remembered per user: enough for a copy sent right after its first, not
# for messages read again after a fault, which only their offsets can tell apart.
dedupe_event_ids = 1
"""
REDELIVERED_SHARE = 0.01
SPIKED_USERS = 3
REORDER_SECONDS = 120.0
"""The configuration's reorder window (the default): a buffer is read with it."""
QUIET_FLUSH_SECONDS = 8
"""Held events of a routing key quiet this long are scored (the runs' last events).
Events of the key that come after such a flush and before what it scored are late,
scored as they come: the states then differ from replay's in the order the team took
its members' events. Time the worker cannot take events (its broker frozen) does not
count (``QuietClock``), so only the input's own silence flushes."""


@dataclass(frozen=True)
class Organisation:
    """The events, as sent before and after the fault, and replay's reading of them."""

    before: list[dict]  # type: ignore[type-arg]
    after: list[dict]  # type: ignore[type-arg]
    """Starts with a huge request of each spiked user, judged against their baseline."""
    alerts: Counter[str]
    """Replay's alert messages (``detected_at`` left out), each as often as published."""
    spikes: set[str]
    """The alert ids of the spikes sent first after the fault."""
    scored: int
    duplicates: int
    users: dict[bytes, bytes]
    """Table key -> the state replay ends with, for every user and team."""

    @property
    def messages_in(self) -> int:
        return len(self.before) + len(self.after) + len(INVALID)


def organisation(seed: int = 5) -> Organisation:
    """A 16-person organisation over 8 days (about 7,100 messages with the copies)."""
    events, _ = simulate(SimulationSpec(users=16, teams=2, days=8, seed=seed,
                                        incidents_per_kind=1, shifted_teams=0))
    rng = random.Random(seed)
    split = int(len(events) * 0.6)
    first, rest = events[:split], events[split:]
    people = Counter(event["user_id"] for event in first
                     if event["user_id"].startswith("user-"))  # not service accounts
    busiest = people.most_common(SPIKED_USERS)
    spikes = [_spike(next(e for e in reversed(first) if e["user_id"] == user), rest[0])
              for user, _ in busiest]
    before = _with_copies(first, rng)
    after = _with_copies(spikes + rest, rng)
    engine = ScoringEngine(config())
    teams: dict[str, TeamState] = {}
    states: dict[bytes, UserState] = {}
    alerts: Counter[str] = Counter()
    spike_ids, scored, duplicates = set(), 0, 0
    spiked = {spike["event_id"] for spike in spikes}
    arrivals = ((parse_event(json.dumps(e).encode()), json.dumps(e)) for e in before + after)
    for scored_event in score_stream(arrivals, engine, teams):
        event, result, state = scored_event.event, scored_event.result, scored_event.state
        states[routing_key(event).encode() + KEY_SEPARATOR + event.user_id.encode()] = state
        duplicates += result.duplicate
        scored += not result.duplicate
        alerts.update(_comparable(alert) for alert in result.alerts)
        if event.event_id in spiked:
            spike_ids.update(alert.alert_id for alert in result.alerts if alert.kind == "spike")
    final = {key: state.to_bytes() for key, state in states.items()}
    final |= {team.encode() + KEY_SEPARATOR: state.to_bytes() for team, state in teams.items()}
    assert len(spike_ids) == SPIKED_USERS, "each huge request should alert on a baseline"
    return Organisation(before, after, alerts, spike_ids, scored, duplicates, final)


def config() -> DetectorConfig:
    return DetectorConfig.model_validate(tomllib.loads(CONFIG))


def config_file(folder: Path) -> Path:
    path = folder / "tokenradar.toml"
    path.write_text(CONFIG)
    return path


def _spike(last: dict, next_event: dict) -> dict:  # type: ignore[type-arg]
    """A request 100 times the size of the user's last, answered at 100 times its length,
    just before ``next_event`` (a huge input answered as usual is a document read, not a
    spike: see the spike detector)."""
    at = datetime.fromisoformat(next_event["timestamp"]) - timedelta(seconds=1)
    return last | {"event_id": f"{last['event_id']}-spike", "timestamp": at.isoformat(),
                   "input_tokens": 100 * max(last["input_tokens"], 1000),
                   "output_tokens": 100 * max(last["output_tokens"], 100),
                   "session_id": f"{last['user_id']}-spike-session"}


def _with_copies(events: list[dict], rng: random.Random) -> list[dict]:  # type: ignore[type-arg]
    """``events`` with 1% of them sent a second time, right after the first."""
    sent = []
    for event in events:
        sent.append(event)
        if rng.random() < REDELIVERED_SHARE:
            sent.append(event)
    return sent


def _comparable(alert: AnomalyEvent) -> str:
    return alert.model_dump_json(exclude={"detected_at"})


def send(broker_url: str, topic: str, events: list[dict],  # type: ignore[type-arg]
         invalid: bool = False) -> None:
    """Produce ``events`` keyed by user id (as the contract recommends: a team's members
    then take the re-key hop), with the unscorable messages first when ``invalid``."""
    out = producer(broker_url)
    for value in INVALID if invalid else []:
        out.send(topic, key=b"broken-producer", value=value)
    for event in events:
        out.send(topic, key=event["user_id"].encode(), value=json.dumps(event).encode())
    out.flush()
    out.close()


def read_all(broker_url: str, topic: str) -> list:  # type: ignore[type-arg]
    """Every record of ``topic`` (reading until 1 s passes without one)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap_of(broker_url),
                             auto_offset_reset="earliest", consumer_timeout_ms=1000,
                             group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024)
    try:
        return list(consumer)
    finally:
        consumer.close()


@dataclass(frozen=True)
class Outcome:
    """What a run left in Kafka."""

    alerts: Counter[str]
    """Alert messages (``detected_at`` left out) by how often each was published."""
    dead_letters: int
    """Distinct input messages dead-lettered (a message read again is lettered again)."""
    states: dict[bytes, bytes]
    """Table key -> the latest state of every user and team in the changelog."""
    held: int = 0
    """Events the reorder buffers hold (counted when asked for)."""

    @property
    def alert_ids(self) -> set[str]:
        return {json.loads(message)["alert_id"] for message in self.alerts}

    def scored(self) -> int:
        """Events the users' states took: each state counts its own."""
        return sum(UserState.from_bytes(raw).events for key, raw in self.states.items()
                   if is_user_state_key(key))


def outcome(broker_url: str, topics: object, group: str,
            with_buffers: bool = False) -> Outcome:
    alerts = Counter(_comparable(AnomalyEvent.model_validate_json(record.value))
                     for record in read_all(broker_url, topics.alerts))  # type: ignore[attr-defined]
    letters = {(letter.source_topic, letter.source_partition, letter.source_offset)
               for letter in (DeadLetter.model_validate_json(record.value)
                              for record in read_all(broker_url, topics.dlq))}  # type: ignore[attr-defined]
    states: dict[bytes, bytes] = {}
    buffers: dict[bytes, bytes] = {}
    for record in read_all(broker_url, f"{group}-user-state-changelog"):
        if record.key.endswith(VERDICTS_SUFFIX):
            continue  # no verdicts here
        kept = buffers if record.key.endswith(BUFFER_SUFFIX) else states
        if record.value is None:  # a tombstone: the state was deleted (expired)
            kept.pop(record.key, None)
        else:
            kept[record.key] = record.value
    held = (sum(len(ReorderBuffer.from_bytes(raw, REORDER_SECONDS)) for raw in buffers.values())
            if with_buffers else 0)
    return Outcome(alerts, len(letters), states, held)


def check_accounting(found: Outcome, expected: Organisation) -> str:
    """Assert exact accounting and replay's alerts; return the figures as one line."""
    scored = found.scored()
    duplicates = expected.messages_in - scored - found.dead_letters
    figures = (f"in {expected.messages_in:,} = scored {scored:,} + duplicates {duplicates:,} "
               f"+ dead-lettered {found.dead_letters:,}; {sum(found.alerts.values())} alert "
               f"messages, {len(found.alert_ids)} alert ids (replay: "
               f"{sum(expected.alerts.values())}, {len(expected_ids(expected))})")
    assert found.dead_letters == len(INVALID), figures
    assert scored == expected.scored, figures
    assert duplicates == expected.duplicates, figures
    assert found.alert_ids == expected_ids(expected), figures
    assert set(found.alerts) == set(expected.alerts), figures  # same content, each id
    assert expected.spikes <= found.alert_ids, "a spike after the fault was not judged"
    mismatched = sorted(key for key in expected.users if found.states.get(key)
                        != expected.users[key])
    assert not mismatched and len(found.states) == len(expected.users), (
        f"states unlike replay's: {_differences(found.states, expected.users, mismatched)}; "
        f"{figures}")
    return figures


def _differences(found: dict[bytes, bytes], expected: dict[bytes, bytes],
                 keys: list[bytes]) -> dict[bytes, list[str]]:
    """For each key: the fields of its stored record that differ from replay's, by
    position (records are stored as arrays of their fields)."""
    differing = {}
    for key in keys[:5]:
        mine = msgspec.msgpack.decode(found[key]) if key in found else [0, []]
        theirs = msgspec.msgpack.decode(expected[key])
        differing[key] = [f"field {n}: {str(a)[:300]} != {str(b)[:300]}"
                          for n, (a, b) in enumerate(zip(mine[1], theirs[1], strict=False))
                          if a != b]
    return differing


def expected_ids(expected: Organisation) -> set[str]:
    return {json.loads(message)["alert_id"] for message in expected.alerts}


def seconds_until(condition: Callable[[], bool], timeout_s: float,
                  describe: Callable[[], str] = str) -> float:
    """Wait for ``condition``; return how long it took (polled every 0.1 s)."""
    started = time.monotonic()
    deadline = started + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {describe()}")
        time.sleep(0.1)
    return time.monotonic() - started


def taken(worker: WorkerProcess) -> float:
    """Input messages the worker took so far, whatever became of them."""
    return sum(worker.outcomes().values())


def wait_done(broker_url: str, topics: object, group: str, expected: Organisation,
              timeout_s: float = 150, describe: Callable[[], str] = str) -> None:
    """Until the changelog's states took as many events as replay scored, no reorder
    buffer holds one, and every alert id of replay's is out."""
    def done() -> bool:
        found = outcome(broker_url, topics, group, with_buffers=True)
        return (found.scored() >= expected.scored and found.held == 0
                and found.alert_ids >= expected_ids(expected))

    wait_until(done, timeout_s, describe)



def committed_offsets(broker_url: str, group: str, topic: str, partitions: int
                      ) -> dict[int, int | None]:
    """The group's committed offset of each partition of ``topic`` (None: none)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_of(broker_url), group_id=group,
                             enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()
