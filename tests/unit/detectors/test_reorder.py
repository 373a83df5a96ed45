"""The reorder buffer: one order per routing key, whatever the arrival order; late events
scored, never dropped; the same releases after a store and load."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tokenradar.detectors.reorder import MAX_HELD_BYTES, Released, ReorderBuffer, held_text
from tokenradar.schemas import TokenUsageEvent
from tokenradar.schemas.config import DEFAULT_REORDER_MAX_EVENTS
from tokenradar.schemas.events import MAX_NAME_LENGTH

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
WINDOW = 120.0


def _event(seconds: float, number: int) -> tuple[TokenUsageEvent, str]:
    event = TokenUsageEvent(event_id=f"e{number:04d}", user_id="ana", model="m",
                            timestamp=START + timedelta(seconds=seconds), input_tokens=10,
                            output_tokens=1)
    return event, event.model_dump_json()


def _ids(released: list[Released]) -> list[str]:
    return [item.event.event_id for item in released]


def _run(buffer: ReorderBuffer, arrivals: list[tuple[tuple[TokenUsageEvent, str], str]]
         ) -> list[Released]:
    released = [item for (event, raw), origin in arrivals
                for item in buffer.add(event, raw, origin)]
    return released + buffer.flush()


def _stream(count: int = 400, seed: int = 1) -> list[tuple[TokenUsageEvent, str]]:
    """Requests 1-60 s apart, some at the very same time."""
    rng = random.Random(seed)
    at, events = 0.0, []
    for number in range(count):
        at += rng.choice([0.0, rng.uniform(1, 60)])
        events.append(_event(at, number))
    return events


def _in_order(events: list[tuple[TokenUsageEvent, str]]) -> list[str]:
    return [e.event_id for e, _ in sorted(events, key=lambda p: (p[0].timestamp, p[0].event_id))]


def test_events_shuffled_within_the_window_come_out_in_time_then_id_order() -> None:
    events = _stream()
    rng = random.Random(2)
    shuffled = sorted(events, key=lambda p: p[0].epoch_seconds + rng.uniform(0, WINDOW))
    released = _run(ReorderBuffer(WINDOW), [(e, "file") for e in shuffled])
    assert _ids(released) == _in_order(events)
    assert not any(item.late for item in released)


def test_nothing_is_released_before_a_window_of_later_events_arrived() -> None:
    buffer = ReorderBuffer(WINDOW)
    assert buffer.add(*_event(0, 0), "file") == []
    assert buffer.add(*_event(WINDOW, 1), "file") == []  # 0 is not before 120 - 120
    assert _ids(buffer.add(*_event(WINDOW + 1, 2), "file")) == ["e0000"]
    assert len(buffer) == 2


def test_an_event_later_than_the_window_is_scored_at_once_as_late() -> None:
    buffer = ReorderBuffer(WINDOW)
    for number, seconds in enumerate((0, 100, 300)):
        buffer.add(*_event(seconds, number), "file")
    late = buffer.add(*_event(50, 9), "file")  # 300 - 120 = 180 already released up to
    assert [(item.event.event_id, item.late) for item in late] == [("e0009", True)]
    assert _ids(buffer.flush()) == ["e0002"]


def test_flush_releases_everything_in_order_and_later_arrivals_before_it_are_late() -> None:
    buffer = ReorderBuffer(WINDOW)
    for number, seconds in enumerate((30, 10, 20)):
        buffer.add(*_event(seconds, number), "file")
    assert _ids(buffer.flush()) == ["e0001", "e0002", "e0000"]
    assert buffer.flush() == []
    assert buffer.add(*_event(25, 7), "file")[0].late


def test_the_order_does_not_depend_on_how_origins_interleave() -> None:
    """Four partitions, each in order, merged at random paces once each has delivered its
    first event (as a producer starts: all at about the same time): one order, no late
    event."""
    events = _stream(600, seed=3)
    expected = _in_order(events)
    rng = random.Random(4)
    for _ in range(20):
        partitions: list[list[tuple[TokenUsageEvent, str]]] = [[], [], [], []]
        for event in events:
            partitions[rng.randrange(4)].append(event)
        arrivals = sorted(((partitions[p].pop(0), str(p)) for p in range(4)),
                          key=lambda arrival: arrival[0][0].timestamp)
        while any(partitions):
            origin = rng.choice([p for p in range(4) if partitions[p]])
            for _ in range(rng.randint(1, 80)):  # a fetch: up to 80 records of one partition
                if partitions[origin]:
                    arrivals.append((partitions[origin].pop(0), str(origin)))
        released = _run(ReorderBuffer(WINDOW), arrivals)
        assert _ids(released) == expected
        assert not any(item.late for item in released)


def test_an_origin_known_from_other_keys_holds_this_one_until_it_delivers() -> None:
    buffer = ReorderBuffer(WINDOW)
    progress = {"0": 0.0, "1": 0.0}  # both origins delivered other keys' events from 0 s
    start = _event(0, 0)[0].epoch_seconds
    assert buffer.add(*_event(10, 0), "0", progress) == []
    progress["0"] = start + 900.0  # origin 0 went on with other keys; 1 is still at 0 s
    assert buffer.add(*_event(900, 1), "0", progress) == []
    progress["1"] = start + 500.0
    released = buffer.add(*_event(500, 2), "1", progress)
    assert _ids(released) == ["e0000"]  # before 500 - 120; the others may still come


def test_an_origin_that_stopped_no_longer_holds_the_others() -> None:
    buffer = ReorderBuffer(WINDOW)
    start = _event(0, 0)[0].epoch_seconds
    buffer.add(*_event(0, 0), "0", {"0": start, "1": start})
    released = buffer.add(*_event(300, 1), "0", {"0": start + 300})  # "1" went silent
    assert _ids(released) == ["e0000"]


def test_a_stored_and_loaded_buffer_releases_the_same_events() -> None:
    events = _stream(300, seed=5)
    rng = random.Random(6)
    arrivals = [(e, str(rng.randrange(2))) for e in
                sorted(events, key=lambda p: p[0].epoch_seconds + rng.uniform(0, WINDOW))]
    kept = ReorderBuffer(WINDOW)
    stored = ReorderBuffer(WINDOW).to_bytes()
    for (event, raw), origin in arrivals:
        loaded = ReorderBuffer.from_bytes(stored, WINDOW)
        assert _ids(loaded.add(event, raw, origin)) == _ids(kept.add(event, raw, origin))
        stored = loaded.to_bytes()
    assert _ids(ReorderBuffer.from_bytes(stored, WINDOW).flush()) == _ids(kept.flush())


def test_the_offsets_taken_survive_a_store_and_load() -> None:
    buffer = ReorderBuffer(WINDOW)
    assert buffer.first_delivery("direct", 41)
    buffer.add(*_event(0, 0), "direct")
    loaded = ReorderBuffer.from_bytes(buffer.to_bytes(), WINDOW)
    assert not loaded.first_delivery("direct", 41)
    assert loaded.first_delivery("direct", 42)


def test_a_buffer_stored_before_offsets_were_kept_is_read() -> None:
    stored = b'{"v":1,"window":120.0,"newest":{"file":0.0},"frontier":null,"held":[]}'
    loaded = ReorderBuffer.from_bytes(stored, WINDOW)
    assert loaded.offsets == {} and loaded.first_delivery("direct", 0)


def test_a_buffer_record_stored_before_its_offsets_field_is_read() -> None:
    import msgspec

    stored = msgspec.msgpack.encode((2, [{"direct": 0.0}, 0.0, []]))  # newest, frontier, held
    loaded = ReorderBuffer.from_bytes(stored, WINDOW)
    assert loaded.offsets == {} and loaded.first_delivery("direct", 0)


PRODUCER_MAX_REQUEST = 1_048_576
"""The producer's default ``max.request.size``: a changelog record must fit in it."""


def _flood(count: int, seconds: float, seed: int, name: str = "m"
           ) -> list[tuple[TokenUsageEvent, str]]:
    """``count`` events of one routing key spread over ``seconds``, each up to 1 s out
    of order; ``name`` for every name field (to fatten the held events)."""
    rng = random.Random(seed)
    events = []
    for number in range(count):
        event = TokenUsageEvent(
            event_id=f"flood-{number:06d}", user_id=f"u{number % 7}", team=name, model=name,
            client=name, session_id=name, prompt_fingerprint=name,
            timestamp=START + timedelta(seconds=number * seconds / count + rng.uniform(0, 1)),
            input_tokens=10, output_tokens=1)
        events.append((event, held_text(event)))
    return events


def test_a_flood_is_held_up_to_the_bound_and_released_earliest_first() -> None:
    """5,000 events in a minute: never more than the bound held, every event released
    once, in order (none late: each is less out of order than the bound's span)."""
    buffer, released = ReorderBuffer(WINDOW, max_events=250), []
    for event, raw in _flood(5_000, 60.0, seed=3):
        released += buffer.add(event, raw, "file")
        assert len(buffer) <= 250
    assert len(released) == 5_000 - 250  # the window never passed: the bound let them out
    released += buffer.flush()
    assert not any(item.late for item in released)
    assert _ids(released) == _in_order(_flood(5_000, 60.0, seed=3))


def test_an_event_before_one_released_by_the_bound_is_late() -> None:
    buffer = ReorderBuffer(WINDOW, max_events=2)
    assert _ids(buffer.add(*_event(10, 1), "file") + buffer.add(*_event(20, 2), "file")) == []
    assert _ids(buffer.add(*_event(30, 3), "file")) == ["e0001"]
    (late,) = buffer.add(*_event(5, 0), "file")
    assert (late.event.event_id, late.late) == ("e0000", True)
    assert _ids(buffer.flush()) == ["e0002", "e0003"]


def test_a_buffer_at_the_default_bound_stores_a_record_well_under_a_request() -> None:
    buffer = ReorderBuffer(WINDOW)
    for event, raw in _flood(5_000, 60.0, seed=4, name="payments-platform"):
        buffer.add(event, raw, "file")
    assert len(buffer) == DEFAULT_REORDER_MAX_EVENTS
    assert len(buffer.to_bytes()) < PRODUCER_MAX_REQUEST / 2


def test_events_with_every_name_at_its_longest_are_bounded_by_bytes() -> None:
    """Names of 256 four-byte characters: ~7 KB an event; the byte bound holds first."""
    buffer = ReorderBuffer(WINDOW)
    for event, raw in _flood(1_000, 60.0, seed=5, name="\U0001f600" * MAX_NAME_LENGTH):
        buffer.add(event, raw, "file")
        assert buffer.held_bytes <= MAX_HELD_BYTES
    assert len(buffer) < DEFAULT_REORDER_MAX_EVENTS
    assert len(buffer.to_bytes()) < PRODUCER_MAX_REQUEST * 0.6


def test_a_bound_lowered_since_the_buffer_was_stored_releases_on_the_next_event() -> None:
    buffer = ReorderBuffer(WINDOW, max_events=10)
    flood = _flood(11, 5.0, seed=6)
    for event, raw in flood[:10]:
        buffer.add(event, raw, "file")
    loaded = ReorderBuffer.from_bytes(buffer.to_bytes(), WINDOW, max_events=4)
    assert loaded.held_bytes == buffer.held_bytes
    released = loaded.add(*flood[10], "file")
    assert len(released) == 7 and len(loaded) == 4
    assert _ids(released + loaded.flush()) == _in_order(flood)
