"""State expiry: a person back after state_expiry_days starts afresh, in the worker's batch
step and in replay alike; the states of people gone are swept, and counted."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tokenradar.detectors import ScoringEngine, UserState
from tokenradar.detectors.retention import StateRetention
from tokenradar.replay import replay_file
from tokenradar.schemas import DetectorConfig
from tokenradar.streams.batch import (
    Received,
    flush_routes,
    partition_for,
    process_batch,
    user_state_key,
)
from tokenradar.streams.expiry import StateIndex

PARTITIONS = 4
START = datetime(2026, 10, 1, 9, tzinfo=UTC)
PROCESSED = START + timedelta(days=365)
"""The worker's clock: after every event (one far ahead of it would be dead-lettered)."""


def _event(user: str, number: int, at: datetime) -> dict[str, object]:
    return {"event_id": f"{user}-{number}", "timestamp": at.isoformat(), "user_id": user,
            "team": "core", "model": "m", "input_tokens": 1000, "output_tokens": 100}


def _days_of_usage(user: str, first_day: int, days: int) -> list[dict[str, object]]:
    return [_event(user, day * 100 + i, START + timedelta(days=day, minutes=7 * i))
            for day in range(first_day, first_day + days) for i in range(20)]


_OFFSETS = itertools.count()
"""The input partition's offsets, growing from one batch to the next as Kafka's do."""


def _batch_step(events: list[dict[str, object]], stored: dict[bytes, bytes],
                retention: StateRetention | None) -> int:
    """Score ``events`` through the worker's step into ``stored``; the users expired."""
    engine = ScoringEngine(DetectorConfig())
    messages = [Received(b"core", json.dumps(event).encode(), "usage",
                         partition_for("core", PARTITIONS), next(_OFFSETS))
                for event in events]
    outcome = process_batch(messages, engine, stored.get, "usage", PARTITIONS, PROCESSED,
                            retention=retention)
    stored.update(outcome.states)
    flushed = flush_routes(["core"], engine, stored.get, PARTITIONS, PROCESSED,
                           retention=retention)
    stored.update(flushed.states)
    return outcome.expired + flushed.expired


def test_worker_step_starts_a_user_back_after_the_expiry_afresh() -> None:
    retention = StateRetention(expiry_days=30, margin_seconds=120)
    stored: dict[bytes, bytes] = {}
    assert _batch_step(_days_of_usage("ana", 0, 5), stored, retention) == 0
    before = UserState.from_bytes(stored[user_state_key("core", "ana")]).events
    assert before == 100
    assert _batch_step(_days_of_usage("ana", 20, 1), stored, retention) == 0  # 16 days: kept
    assert UserState.from_bytes(stored[user_state_key("core", "ana")]).events == 120
    assert _batch_step(_days_of_usage("ana", 60, 1), stored, retention) == 1  # 40 days: afresh
    assert UserState.from_bytes(stored[user_state_key("core", "ana")]).events == 20


def test_without_expiry_a_user_back_after_months_keeps_the_state() -> None:
    stored: dict[bytes, bytes] = {}
    _batch_step(_days_of_usage("ana", 0, 5), stored, StateRetention(expiry_days=0))
    assert _batch_step(_days_of_usage("ana", 200, 1), stored, StateRetention(0)) == 0
    assert UserState.from_bytes(stored[user_state_key("core", "ana")]).events == 120


def _write(path: Path, events: list[dict[str, object]]) -> Path:
    events = sorted(events, key=lambda event: str(event["timestamp"]))
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def test_replay_sweeps_people_gone_and_starts_those_back_afresh(tmp_path: Path) -> None:
    events = (_days_of_usage("ana", 0, 5) + _days_of_usage("bob", 0, 50)
              + _days_of_usage("carl", 0, 5) + _days_of_usage("carl", 45, 2))
    path = _write(tmp_path / "events.jsonl", events)
    kept = replay_file(path, tmp_path / "kept.jsonl")
    expired = replay_file(path, tmp_path / "expired.jsonl", state_expiry_days=30)
    assert kept.expired == 0
    # ana is swept (gone for good), carl is swept too and comes back afresh
    assert expired.expired == 2
    assert "2 users' states expired" in expired.describe()


def test_replay_agrees_with_the_worker_step_on_who_starts_afresh(tmp_path: Path) -> None:
    events = _days_of_usage("ana", 0, 3) + _days_of_usage("ana", 40, 1)
    path = _write(tmp_path / "events.jsonl", events)
    scores = tmp_path / "scores.jsonl"
    replay_file(path, tmp_path / "alerts.jsonl", scores, state_expiry_days=30)
    stored: dict[bytes, bytes] = {}
    _batch_step(events, stored, StateRetention(30, 120))
    state = UserState.from_bytes(stored[user_state_key("core", "ana")])
    assert state.events == 20  # the last day only, in both
    assert len(scores.read_text().splitlines()) == 80


def test_index_sweeps_a_partition_once_per_new_day_of_its_event_time() -> None:
    day = 86_400.0
    index = StateIndex(StateRetention(expiry_days=3, margin_seconds=120))
    index.note(1, b"core\x1fana", 0.0)
    index.note(2, b"ops\x1fbob", 0.0)
    index.note(1, b"core\x1fcarl", 3 * day + 60)
    assert index.due() == []  # ana: 3 days and a minute, within the reorder margin
    index.note(1, b"core\x1fcarl", 4 * day)
    assert index.due() == [b"core\x1fana"]  # bob's partition saw no later day
    assert len(index) == 2
    index.forget()
    assert len(index) == 0 and index.due() == []
