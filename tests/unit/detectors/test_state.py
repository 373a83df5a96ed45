"""UserState: the record round-trips exactly, refuses other versions, stays small; dedupe."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import EventLists

from tokenradar.detectors import ScoringEngine, UserState, legacy, records
from tokenradar.detectors.context import PROFILE_SCALE
from tokenradar.detectors.state import (
    CODEC_VERSION,
    DAY_SECONDS,
    FINGERPRINT_BYTES,
    SeenIds,
    _id_fingerprint,
    stored_last_time,
)
from tokenradar.schemas import DetectorConfig, TokenUsageEvent

DATA = Path(__file__).parent / "data"
STATE_BUDGET_BYTES = 3328
"""A user's state with every detector: usual hours and weekdays, dedupe fingerprints (384
ids of 4 bytes: 1.5 KB), each detector's numbers; ~3 KB with 36-character event ids. A
River HalfSpaceTrees per user would be ~170 KB."""


def _history(event_lists: EventLists, seed: int, hours: int) -> list[TokenUsageEvent]:
    """Steady usage, then a big request, a burst and a higher level: every detector works."""
    rng = random.Random(seed)
    events = event_lists.steady(rng, hours)
    after = events[-1].timestamp
    events.append(event_lists.event(len(events), after, 400_000))
    events += event_lists.burst(80, after, every_seconds=4, tokens=300)
    events += event_lists.steady(rng, hours // 2, tokens=9000, start=after, first=len(events))
    return events


def test_state_survives_encoding_after_every_event(event_lists: EventLists) -> None:
    """What makes worker == replay: storing and loading state changes nothing."""
    events = _history(event_lists, seed=11, hours=60)
    engine = ScoringEngine(DetectorConfig())
    kept = engine.new_state("ana")
    stored = engine.new_state("ana").to_bytes()
    for event in events:
        in_memory = engine.score_event(kept, event, event.timestamp)
        loaded = UserState.from_bytes(stored)
        reloaded = engine.score_event(loaded, event, event.timestamp)
        stored = loaded.to_bytes()
        assert reloaded == in_memory
        assert stored == kept.to_bytes()
    assert any(result.alerts for result in
               event_lists.score_all(ScoringEngine(DetectorConfig()), events))


def test_state_decoded_midway_continues_identically(event_lists: EventLists) -> None:
    events = _history(event_lists, seed=12, hours=60)
    engine = ScoringEngine(DetectorConfig())
    middle = len(events) // 2
    never_encoded = event_lists.score_all(engine, events)
    state = engine.new_state("ana")
    first = [engine.score_event(state, e, e.timestamp) for e in events[:middle]]
    restored = UserState.from_bytes(state.to_bytes())
    rest = [engine.score_event(restored, e, e.timestamp) for e in events[middle:]]
    assert first + rest == never_encoded


def test_encoded_state_is_its_record_behind_the_schema_version(event_lists: EventLists) -> None:
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event_lists.score_all(engine, event_lists.steady(random.Random(1), 3), state)
    version, body = msgspec.msgpack.decode(state.to_bytes(), type=tuple[int, msgspec.Raw])
    decoded = records.decoder(UserState).decode(body)
    assert version == CODEC_VERSION
    assert decoded.user_id == "ana" and decoded.events == state.events


@pytest.mark.parametrize("version", [CODEC_VERSION + 1, 0])
def test_state_of_another_schema_version_is_refused_clearly(version: int) -> None:
    with pytest.raises(ValueError, match=f"user state schema version {version} is not"):
        UserState.from_bytes(records.encode(version, UserState(user_id="ana")))


@pytest.mark.parametrize("version", [3, 0, None])
def test_json_state_of_a_version_ae4055c_did_not_write_is_refused_clearly(
        version: object) -> None:
    document = {"v": version, "user": "ana"}
    with pytest.raises(ValueError, match="user state in JSON with codec version"):
        UserState.from_bytes(json.dumps(document).encode())


def test_bytes_that_are_no_state_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="user state is not a stored user state"):
        UserState.from_bytes(b"\x92\x03\xa3ana")


def _uuid_ids(events: list[TokenUsageEvent], rng: random.Random) -> list[TokenUsageEvent]:
    return [e.model_copy(update={"event_id": str(uuid.UUID(int=rng.getrandbits(128)))})
            for e in events]


@pytest.mark.parametrize("id_shape", ["short", "uuid"])
def test_state_after_2000_events_stays_under_budget(event_lists: EventLists, id_shape: str) -> None:
    rng = random.Random(5)
    events = event_lists.steady(rng, hours=2000 // 6 + 1)[:2000]
    if id_shape == "uuid":
        events = _uuid_ids(events, rng)
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event_lists.score_all(engine, events, state)
    assert state.events == 2000
    assert len(state.to_bytes()) < STATE_BUDGET_BYTES


def test_same_event_id_is_scored_once(event_lists: EventLists) -> None:
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event = event_lists.event(1, event_lists.start, 1000)
    first = engine.score_event(state, event, event.timestamp)
    again = engine.score_event(state, event, event.timestamp)
    assert not first.duplicate
    assert again.duplicate and again.score == 0.0 and again.alerts == []
    assert state.events == 1


def test_duplicate_is_recognised_after_the_state_is_stored(event_lists: EventLists) -> None:
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event = event_lists.event(1, event_lists.start, 1000)
    engine.score_event(state, event, event.timestamp)
    restored = UserState.from_bytes(state.to_bytes())
    assert engine.score_event(restored, event, event.timestamp).duplicate


def test_redelivered_event_is_recognised_days_later(event_lists: EventLists) -> None:
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    events = event_lists.workdays(random.Random(2), days=6)  # a person: ~30 a working day
    event_lists.score_all(engine, events, state)
    assert (events[-1].timestamp - events[3].timestamp).days >= 4
    for old in (events[3], events[len(events) // 2], events[-1]):
        assert engine.score_event(state, old, old.timestamp).duplicate, old.event_id
    stored = UserState.from_bytes(state.to_bytes())
    assert engine.score_event(stored, events[3], events[3].timestamp).duplicate


def test_a_late_event_never_seen_is_scored(event_lists: EventLists) -> None:
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    events = event_lists.steady(random.Random(2), hours=24 * 3)
    late = events.pop(40)
    event_lists.score_all(engine, events, state)
    assert not engine.score_event(state, late, late.timestamp).duplicate


def test_dedupe_forgets_days_beyond_the_horizon() -> None:
    seen = SeenIds()
    assert not seen.seen_before("old", 0.0, horizon_days=2, capacity=100)
    assert not seen.seen_before("new", 2 * DAY_SECONDS, horizon_days=2, capacity=100)
    assert seen.seen_before("old", 0.0, horizon_days=2, capacity=100)
    assert not seen.seen_before("newer", 3 * DAY_SECONDS, horizon_days=2, capacity=100)
    assert not seen.seen_before("old", 0.0, horizon_days=2, capacity=100)
    assert (list(seen.sealed), list(seen.days)) == ([2], [3])


def test_dedupe_keeps_at_most_capacity_ids_forgetting_the_oldest_first() -> None:
    seen = SeenIds()
    for number in range(10):
        assert not seen.seen_before(f"e{number}", number * 3600.0, horizon_days=7, capacity=4)
    assert sum(len(bucket) for bucket in seen.days.values()) == 4 * FINGERPRINT_BYTES
    assert seen.seen_before("e6", 6 * 3600.0, horizon_days=7, capacity=4)
    assert not seen.seen_before("e5", 5 * 3600.0, horizon_days=7, capacity=4)


def _ids_alike_in_their_first_two_bytes() -> tuple[str, str]:
    """Two event ids whose digests share their first two bytes (what versions before 6
    kept): a birthday search, a few hundred ids."""
    first: dict[bytes, str] = {}
    for number in range(100_000):
        event_id = f"evt-{number}"
        head = _id_fingerprint(event_id)[:2]
        if head in first:
            return first[head], event_id
        first[head] = event_id
    raise AssertionError("no two ids alike in 100,000")


def test_a_late_event_alike_in_two_bytes_to_one_seen_is_scored() -> None:
    """The CI fuzz run lost a real late event this way while fingerprints were 2 bytes."""
    seen, late = _ids_alike_in_their_first_two_bytes()
    ids = SeenIds()
    assert not ids.seen_before(seen, 1_000.0, horizon_days=7, capacity=384)
    assert not ids.seen_before("newest", 2_000.0, horizon_days=7, capacity=384)
    assert not ids.seen_before(late, 1_500.0, horizon_days=7, capacity=384)
    assert ids.seen_before(late, 1_500.0, horizon_days=7, capacity=384)


def test_ids_a_version_5_state_saw_stay_seen_until_past_the_horizon() -> None:
    """A state stored with 2-byte fingerprints keeps finding its redelivered events."""
    state = UserState(user_id="ana")
    assert not state.seen.seen_before("e1", 1_000.0, horizon_days=2, capacity=384)
    body = msgspec.msgpack.decode(state.to_bytes())[1]
    newest, days = body[5][:2]
    body[5] = [newest, {day: bucket[:2] for day, bucket in days.items()}]  # as version 5
    restored = UserState.from_bytes(msgspec.msgpack.encode([5, body])).seen
    assert restored.narrow and not restored.days
    assert restored.seen_before("e1", 1_000.0, horizon_days=2, capacity=384)
    assert not restored.seen_before("e2", 1_000.0, horizon_days=2, capacity=384)
    assert list(restored.days) == [0]
    assert not restored.seen_before("e3", 3 * DAY_SECONDS, horizon_days=2, capacity=384)
    assert not restored.narrow and list(restored.days) == [3]


def test_past_days_ids_are_sealed_as_sets_that_keep_every_fingerprint() -> None:
    """Once the newest event is of a later day, a day's 4-byte fingerprints are kept as a
    Rice-coded set: every one still found, in fewer bytes (same odds of a false match)."""
    seen = SeenIds()
    day_ids = [f"evt-{number}" for number in range(300)]
    for number, event_id in enumerate(day_ids):
        assert not seen.seen_before(event_id, number * 60.0, horizon_days=7, capacity=384)
    assert not seen.seen_before("tomorrow", DAY_SECONDS + 1, horizon_days=7, capacity=384)
    (sealed,) = seen.sealed.values()
    assert sealed.count == 300 and len(sealed.code) < 300 * FINGERPRINT_BYTES * 0.8
    assert all(seen.seen_before(event_id, number * 60.0, horizon_days=7, capacity=384)
               for number, event_id in enumerate(day_ids))
    assert not seen.seen_before("late", 30.0, horizon_days=7, capacity=384)
    assert seen.seen_before("late", 30.0, horizon_days=7, capacity=384)


def test_capacity_forgets_a_sealed_days_ids_before_a_later_days() -> None:
    seen = SeenIds()
    for number in range(6):
        assert not seen.seen_before(f"old{number}", number * 60.0, horizon_days=7, capacity=8)
    for number in range(4):
        assert not seen.seen_before(f"new{number}", DAY_SECONDS + number, horizon_days=7,
                                    capacity=8)
    sealed = seen.sealed[0]
    assert (sealed.count, sealed.remembered) == (6, 4)
    assert len(seen.days[1]) == 4 * FINGERPRINT_BYTES
    assert all(seen.seen_before(f"new{n}", DAY_SECONDS + n, horizon_days=7, capacity=8)
               for n in range(4))


def test_a_version_6_state_keeps_its_ids_and_seals_its_past_days() -> None:
    """Version 6 kept every day's fingerprints in the order seen (today's layout but for
    the sealed days, a field added last)."""
    state = UserState(user_id="ana")
    assert not state.seen.seen_before("e1", 1_000.0, horizon_days=7, capacity=384)
    assert not state.seen.seen_before("e2", 2_000.0, horizon_days=7, capacity=384)
    body = msgspec.msgpack.decode(state.to_bytes())[1]
    body[5] = body[5][:3]  # newest, days, narrow: as version 6 stored them
    restored = UserState.from_bytes(msgspec.msgpack.encode([6, body]))
    assert stored_last_time(msgspec.msgpack.encode([6, body])) == restored.context.last_time
    seen = restored.seen
    assert list(seen.days) == [0] and not seen.sealed
    assert seen.seen_before("e1", 1_000.0, horizon_days=7, capacity=384)
    assert not seen.seen_before("e3", DAY_SECONDS + 1, horizon_days=7, capacity=384)
    assert (list(seen.sealed), list(seen.days)) == ([0], [1])
    assert seen.seen_before("e2", 2_000.0, horizon_days=7, capacity=384)


def test_a_version_8_state_keeps_its_spike_numbers_and_learns_fresh_tokens_afresh(
        event_lists: EventLists) -> None:
    """Version 8's spike slot had no fresh tokens of hours (fields added last): they are
    read as their defaults, and everything the slot held is kept."""
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event_lists.score_all(engine, event_lists.steady(random.Random(5), hours=12), state)
    body = msgspec.msgpack.decode(state.to_bytes())[1]
    spike = body[6]["spike"]
    assert spike[-3][0] >= 10  # the fresh hours learned, before they are cut off
    body[6]["spike"] = spike[:-3]  # as version 8 stored it
    raw = msgspec.msgpack.encode([8, body])
    restored = UserState.from_bytes(raw)
    assert stored_last_time(raw) == restored.context.last_time > 0
    detector = next(d for d in engine.detectors if d.name == "spike")
    slot = detector.restore(restored.slots["spike"])
    assert (slot.fresh_hours.count, slot.hour_fresh, slot.recent_fresh) == (0, 0, 0)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(slot))[:-3] == spike[:-3]


def test_state_stored_by_the_previous_release_loads_and_keeps_its_ids() -> None:
    """A blob written by codec 1 (the release before per-day dedupe): ana, 180 steady
    events ``ana-0``..``ana-179``, the last at 2026-11-03T14:53:40.185333Z."""
    blob = (DATA / "user_state_codec_v1.json").read_bytes().strip()
    assert json.loads(blob)["v"] == 1
    state = UserState.from_bytes(blob)
    assert state.events == 180 and state.context.last_time > 0
    engine = ScoringEngine(DetectorConfig())
    last = TokenUsageEvent(event_id="ana-179", user_id="ana", team="core", model="m",
                           timestamp=datetime.fromtimestamp(state.context.last_time, UTC),
                           input_tokens=2000, output_tokens=600)
    assert engine.score_event(state, last, last.timestamp).duplicate
    later = last.model_copy(update={"event_id": "ana-180",
                                    "timestamp": last.timestamp + timedelta(minutes=5)})
    assert not engine.score_event(state, later, later.timestamp).duplicate
    assert msgspec.msgpack.decode(state.to_bytes())[0] == CODEC_VERSION
    assert UserState.from_bytes(state.to_bytes()).to_bytes() == state.to_bytes()


def test_a_stored_states_last_time_is_read_without_decoding_the_rest(
        event_lists: EventLists) -> None:
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    assert stored_last_time(state.to_bytes()) == -1.0
    event_lists.score_all(engine, event_lists.steady(random.Random(1), 3), state)
    assert state.context.last_time > 0
    assert stored_last_time(state.to_bytes()) == state.context.last_time
    legacy = (DATA / "user_state_codec_v1.json").read_bytes().strip()
    assert stored_last_time(legacy) == UserState.from_bytes(legacy).context.last_time > 0


def test_state_stored_under_version_3_loads_with_the_same_numbers() -> None:
    """A blob version 3 wrote (commit 381f658): user-0005 of ``simulate`` with users=6,
    teams=1, days=12, seed=3, after their 140 events. Version 4 keeps the usual hours and
    weekdays in ten-thousandths and the recent prompts as bytes and a mask: the same
    numbers, and everything else as it was."""
    raw = (DATA / "user_state_v3.msgpack").read_bytes()
    version, old = msgspec.msgpack.decode(raw)
    assert version == 3
    state = UserState.from_bytes(raw)
    context, old_context = state.context, old[3]
    assert [share / PROFILE_SCALE for share in context.hour_profile] == old_context[7]
    assert [share / PROFILE_SCALE for share in context.weekday_profile] == old_context[8]
    assert any(0 < share < 1 for share in old_context[7] + old_context[8])
    digests = context.fingerprints
    ring = [int.from_bytes(digests[i:i + 4], "big") << 1 | (context.repeats >> i // 4) & 1
            for i in range(0, len(digests), 4)]
    assert ring == old_context[9] and 0 < context.repeats.bit_count() < len(ring)
    version, now = msgspec.msgpack.decode(state.to_bytes())
    assert version == CODEC_VERSION
    assert _kept(now[3][:7] + now[3][11:], old_context[:7] + old_context[10:])
    gaming = old[6]["gaming"]  # version 5 stores it without the fields no longer read
    old[6]["gaming"] = [value for place, value in enumerate(gaming)
                        if place not in legacy.GAMING_V4_UNREAD]
    newest, days = old[5]  # version 6 keeps the 2-byte fingerprints apart, as narrow
    old[5] = [newest, {}, days]
    assert _kept(now[:3] + now[4:], old[:3] + old[4:])
    assert stored_last_time(raw) == context.last_time > 0


def _kept(now: Any, old: Any) -> bool:
    """``now`` holds every value ``old`` held (records may have new fields at their end)."""
    if isinstance(now, list) and isinstance(old, list):
        return len(now) >= len(old) and all(map(_kept, now, old))
    if isinstance(now, dict) and isinstance(old, dict):
        return now.keys() == old.keys() and all(_kept(now[key], old[key]) for key in old)
    return bool(now == old)


def test_lists_of_integers_are_held_unboxed_and_stored_as_the_lists_they_are(
        event_lists: EventLists) -> None:
    """The usual hours and weekdays (and the gaming run's times) are held as arrays once
    decoded (a fraction of a list of int objects' memory), and stored exactly as lists:
    the same bytes as the record with plain lists."""
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event_lists.score_all(engine, event_lists.steady(random.Random(1), 72), state)
    restored = UserState.from_bytes(state.to_bytes())
    context = restored.context
    held = [context.hour_profile, context.weekday_profile]
    assert all(type(ints) is records.Ints for ints in held)
    assert context.profile_days and max(context.hour_profile) > 256  # as large as stored
    as_lists = msgspec.structs.replace(
        context, hour_profile=list(context.hour_profile),
        weekday_profile=list(context.weekday_profile))
    assert records.record_bytes(context) == msgspec.msgpack.encode(as_lists)
    assert restored.to_bytes() == state.to_bytes()
