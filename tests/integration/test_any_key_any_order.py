"""Any key, any order: the worker's alerts equal replay's of the clean file.

A simulated organisation's events are sent three ways: keyed by team (the routing
key), unkeyed (the producer spreads them over the partitions), and keyed by a random
string; each time with 2% of them redelivered (half at once, half 2-4 days later) and
each event delayed up to 2 minutes, so every person's events arrive shuffled. The
alerts (ids and content; ``detected_at`` is processing time) must be those of
``replay`` over the clean file: in time order, every event once.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from worker_harness import producer, read_topic

from tokenradar.lab.simulation import SimulationSpec, simulate
from tokenradar.replay import replay_file
from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.config_file import load_config

pytestmark = pytest.mark.integration

CONFIG = """
[scoring]
# A looping script here sends 2,573 requests in a day: remember days of its ids
# (the default, 384, keeps a person's week in the state's budget).
dedupe_event_ids = 4096
dedupe_horizon_days = 7
reorder_seconds = 120
"""
SHUFFLE_SECONDS = 120.0
"""Each event reaches Kafka up to this long after the one made after it: the default
``scoring.reorder_seconds``."""
REDELIVERED_SHARE = 0.02
DAY = 86_400.0


def _seconds(event: dict) -> float:  # type: ignore[type-arg]
    return datetime.fromisoformat(event["timestamp"]).timestamp()


@pytest.fixture(scope="module")
def organisation(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    """The clean events, replay's alerts over them, and the events as sent."""
    events, _ = simulate(SimulationSpec(users=20, teams=3, days=10, seed=3,
                                        incidents_per_kind=1, shifted_teams=1))
    folder = tmp_path_factory.mktemp("any-key")
    config_path = folder / "tokenradar.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)
    clean = folder / "clean.jsonl"
    clean.write_text("".join(json.dumps(event) + "\n" for event in events))
    summary = replay_file(clean, folder / "alerts.jsonl", config=config)
    rng = random.Random(18)
    arrivals = [(_seconds(e) + rng.uniform(0, SHUFFLE_SECONDS), e) for e in events]
    redelivered = rng.sample(events, int(len(events) * REDELIVERED_SHARE))
    for number, event in enumerate(redelivered):
        later = rng.uniform(0, 30) if number % 2 else rng.uniform(2 * DAY, 4 * DAY)
        arrivals.append((_seconds(event) + later, event))
    sent = [event for _, event in sorted(arrivals, key=lambda arrival: arrival[0])]
    shuffled = folder / "sent.jsonl"
    shuffled.write_text("".join(json.dumps(event) + "\n" for event in sent))
    return {"events": events, "sent": sent, "redelivered": len(redelivered),
            "expected": _comparable((folder / "alerts.jsonl").read_text().splitlines()),
            "summary": summary, "shuffled": shuffled, "folder": folder,
            "config": config, "config_path": config_path}


def _comparable(lines: list[bytes] | list[str]) -> list[str]:
    """Every alert message, ``detected_at`` left out, sorted."""
    return sorted(AnomalyEvent.model_validate_json(line).model_dump_json(exclude={"detected_at"})
                  for line in lines)


def test_replay_of_the_shuffled_redelivered_file_equals_replay_of_the_clean_one(
        organisation: dict) -> None:  # type: ignore[type-arg]
    folder: Path = organisation["folder"]
    summary = replay_file(organisation["shuffled"], folder / "shuffled-alerts.jsonl",
                          config=organisation["config"])
    assert organisation["expected"], "the simulation should inject incidents that replay finds"
    assert summary.late == 0
    assert summary.duplicates == organisation["redelivered"]
    assert _comparable((folder / "shuffled-alerts.jsonl").read_text().splitlines()) == (
        organisation["expected"])


@pytest.mark.parametrize("keying", ["team", "none", "random"])
def test_worker_alerts_equal_replay_of_the_clean_file_whatever_the_key(
        broker_url, topics, start_worker, organisation: dict, keying: str  # type: ignore[type-arg]
) -> None:
    send = producer(broker_url)
    for event in organisation["sent"]:
        key = {"team": str(event.get("team") or event["user_id"]).encode(), "none": None,
               "random": uuid.uuid4().hex.encode()}[keying]
        send.send(topics.input, key=key, value=json.dumps(event).encode())
    send.flush()
    send.close()
    # A partition silent this long lets held events go (see quiet_flush_seconds): on a
    # loaded machine 2 s of silence happens mid-stream and would score some as late.
    worker = start_worker(topics, config=organisation["config_path"], quiet_flush_seconds=8)
    worker.wait_for_scored(len(organisation["events"]), timeout_s=150)
    worker.wait_for_events("duplicate", organisation["redelivered"], timeout_s=30)
    expected = organisation["expected"]
    records = read_topic(broker_url, topics.alerts, count=len(expected))
    published = _comparable([record.value for record in records])

    counts = worker.outcomes()
    print(f"keyed by {keying}: {len(published)} alert messages, replay {len(expected)}; "
          f"{counts}")
    assert counts["late"] == 0, worker.describe()
    assert counts["scored"] == len(organisation["events"])
    assert counts["duplicate"] == organisation["redelivered"]
    assert counts["dead_lettered"] == 0
    assert published == expected
