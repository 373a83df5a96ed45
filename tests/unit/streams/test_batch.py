"""The batch step, without a broker: every message gets exactly one fate."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from datetime import UTC, datetime

from tokenradar.detectors import ScoringEngine
from tokenradar.lab.simulation import SimulationSpec, simulate, with_flood
from tokenradar.schemas import AnomalyEvent, DeadLetter, DetectorConfig, parse_event
from tokenradar.schemas.config import DEFAULT_REORDER_MAX_EVENTS
from tokenradar.streams.batch import (
    LiveStates,
    OriginProgress,
    Received,
    Rekeyed,
    flush_routes,
    partition_for,
    process_batch,
)

PARTITIONS = 4
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _message(user: str, number: int, team: str | None = "core") -> Received:
    event = {"event_id": f"{user}-{number}", "timestamp": "2026-11-24T09:15:02.120Z",
             "user_id": user, "team": team, "model": "m", "input_tokens": 100,
             "output_tokens": 10}
    route = team or user
    return Received(route.encode(), json.dumps(event).encode(), "usage",
                    partition_for(route, PARTITIONS), number)


class _Failing(ScoringEngine):
    """An engine whose detectors break on one user's events: a bug, not a bad event."""

    def score_event(self, state, event, detected_at, team_state=None, verdicts=None):  # type: ignore[no-untyped-def]
        if event.user_id == "bob":
            raise ZeroDivisionError("float division by zero")
        return super().score_event(state, event, detected_at, team_state, verdicts)


def test_an_event_the_detectors_fail_on_is_dead_lettered_and_the_batch_goes_on() -> None:
    messages = [_message("ana", 1), _message("bob", 2), _message("ana", 3)]
    engine = _Failing(DetectorConfig())
    outcome = process_batch(messages, engine, {}.get, "usage", PARTITIONS, NOW)
    assert outcome.scored == 0 and outcome.held == {"core": 3}  # within the reorder window
    flushed = flush_routes(["core"], engine, outcome.states.get, PARTITIONS, NOW)
    assert flushed.scored == 2 and flushed.held == {"core": 0}
    (letter,) = flushed.dead_letters
    assert isinstance(letter, DeadLetter)
    assert letter.error_type == "scoring_error"
    assert "ZeroDivisionError" in letter.reason
    # Released by the flush, it is described as the buffer held it (its contract fields).
    assert letter.fields is not None and letter.fields["event_id"].value == "bob-2"
    assert letter.fields["user_id"].value is None and letter.source_topic == "reorder-buffer"


def test_an_event_on_another_partition_than_its_team_is_rekeyed_by_team() -> None:
    message = _message("ana", 1)
    wrong = Received(None, message.value, "usage", (message.partition + 1) % PARTITIONS, 7)
    outcome = process_batch([wrong], ScoringEngine(DetectorConfig()), {}.get, "usage",
                            PARTITIONS, NOW)
    assert outcome.rekeyed == [Rekeyed(b"core", message.value, wrong.partition, 7)]
    assert outcome.scored == 0 and not outcome.states


def test_an_unkeyed_event_on_its_teams_partition_is_rekeyed_too() -> None:
    """So that all of an unkeyed producer's events take the same path, whatever the
    partition: the reorder buffer then waits for each input partition in turn."""
    message = _message("ana", 1)
    unkeyed = Received(None, message.value, "usage", message.partition, 7)
    outcome = process_batch([unkeyed], ScoringEngine(DetectorConfig()), {}.get, "usage",
                            PARTITIONS, NOW)
    assert outcome.rekeyed == [Rekeyed(b"core", message.value, message.partition, 7)]


def test_unkeyed_events_scored_through_the_rekey_topic_give_replays_alerts() -> None:
    """Each input partition in order, the batches interleaving them at random; the held
    events flushed at the end, as replay does at the end of its file."""
    from tokenradar.replay import score_stream

    events, _ = simulate(SimulationSpec(users=12, teams=2, days=9, seed=4,
                                        incidents_per_kind=1, shifted_teams=0))
    raws = [json.dumps(event) for event in events]
    engine = ScoringEngine(DetectorConfig())
    expected = [alert.model_dump(exclude={"detected_at"})
                for scored in score_stream(((parse_event(raw.encode()), raw) for raw in raws),
                                           engine) for alert in scored.result.alerts]
    rng = random.Random(8)
    origins: list[list[Received]] = [[] for _ in range(PARTITIONS)]
    for offset, raw in enumerate(raws):  # a producer without keys: partitions at random
        origin = rng.randrange(PARTITIONS)
        route = str(events[offset].get("team") or events[offset]["user_id"])
        origins[origin].append(Received(route.encode(), raw.encode(), "usage-by-user",
                                        partition_for(route, PARTITIONS), offset, origin))
    table: dict[bytes, bytes] = {}
    alerts, late, held, progress = [], 0, {}, OriginProgress()
    while any(origins):
        # A fetch: up to 100 records of each partition, merged in a random order and
        # cut into batches of random sizes.
        fetched = [messages[:100] for messages in origins]
        for messages in origins:
            del messages[:100]
        merged = []
        while any(fetched):
            merged.append(rng.choice([f for f in fetched if f]).pop(0))
        while merged:
            size = rng.randint(1, 250)
            batch, merged = merged[:size], merged[size:]
            outcome = process_batch(batch, engine, table.get, "usage", PARTITIONS, NOW,
                                    progress=progress)
            table.update(outcome.states)
            alerts += outcome.alerts
            late += outcome.late
            held.update(outcome.held)
    outcome = flush_routes(sorted(held), engine, table.get, PARTITIONS, NOW)
    alerts += outcome.alerts
    assert late == 0
    assert expected, "the simulation should give alerts to compare"
    assert [alert.model_dump(exclude={"detected_at"}) for alert in alerts] == expected


def _simulated_batches(size: int = 500) -> list[list[Received]]:
    events, _ = simulate(SimulationSpec(users=12, teams=2, days=9, seed=4,
                                        incidents_per_kind=1, shifted_teams=0))
    messages = []
    for offset, event in enumerate(events):
        route = str(event.get("team") or event["user_id"])
        messages.append(Received(route.encode(), json.dumps(event).encode(), "usage",
                                 partition_for(route, PARTITIONS), offset))
    return [messages[i:i + size] for i in range(0, len(messages), size)]


def _run(batches: list[list[Received]], live: LiveStates | None, write_every: int = 1
         ) -> tuple[list[str], dict[bytes, bytes]]:
    """Score ``batches``; with ``live``, write its changed states every ``write_every``
    batches (and at the end), as the worker does once per commit interval."""
    engine, table, alert_ids = ScoringEngine(DetectorConfig()), {}, []
    for number, batch in enumerate(batches, 1):
        outcome = process_batch(batch, engine, table.get, "usage", PARTITIONS, NOW, live)
        table.update(outcome.states)
        if live is not None and (number % write_every == 0 or number == len(batches)):
            table.update(live.take_changed())
        alert_ids += [alert.alert_id for alert in outcome.alerts]
    return alert_ids, table


def test_states_kept_live_between_batches_change_no_result() -> None:
    batches = _simulated_batches()
    fresh_alerts, fresh_table = _run(batches, None)
    assert fresh_alerts, "the simulation should give alerts to compare"
    for write_every in (1, 3):
        kept_alerts, kept_table = _run(batches, LiveStates(), write_every)
        assert kept_alerts == fresh_alerts
        assert kept_table == fresh_table


def test_holding_two_states_decoded_changes_no_result() -> None:
    # 12 users, their teams and buffers: most are decoded again, from the table's bytes.
    batches = _simulated_batches()
    fresh_alerts, fresh_table = _run(batches, None)
    assert fresh_alerts, "the simulation should give alerts to compare"
    for write_every in (1, 3):
        small_alerts, small_table = _run(batches, LiveStates(live=2), write_every)
        assert small_alerts == fresh_alerts
        assert small_table == fresh_table


def test_once_written_only_the_states_changed_last_stay_decoded() -> None:
    engine, live = ScoringEngine(DetectorConfig()), LiveStates(live=2)
    states = {name: engine.new_state(name) for name in ("ana", "bob", "eve")}
    for name in ("ana", "bob", "ana", "eve"):  # bob is the one changed longest ago
        live.change(name.encode(), states[name])
    assert len(live) == 3  # changed states stay until written, whatever the bound
    assert sorted(live.take_changed()) == [b"ana", b"bob", b"eve"]
    assert len(live) == 2
    assert live.get(b"ana") is states["ana"] and live.get(b"eve") is states["eve"]
    assert live.get(b"bob") is None  # decoded again from the table when next needed


def test_a_state_changed_by_many_batches_is_written_once_per_take() -> None:
    engine, table, live = ScoringEngine(DetectorConfig()), {}, LiveStates()
    for number in range(3):
        outcome = process_batch([_message("ana", number)], engine, table.get, "usage",
                                PARTITIONS, NOW, live)
        assert not outcome.states  # kept, not encoded, until the worker takes them
    flushed = flush_routes(["core"], engine, table.get, PARTITIONS, NOW, live)
    assert flushed.scored == 3 and not flushed.states
    written = live.take_changed()
    assert sorted(written) == [b"core\x1f", b"core\x1f\x00reorder", b"core\x1fana"]
    assert live.take_changed() == {}  # nothing changed since
    assert flushed.user_times == {b"core\x1fana": parse_event(
        _message("ana", 2).value).epoch_seconds}


def test_forgotten_states_are_decoded_afresh_from_the_table() -> None:
    # After a rebalance: nothing kept from partitions that may have moved away.
    engine, live = ScoringEngine(DetectorConfig()), LiveStates()
    process_batch([_message("ana", 0)], engine, {}.get, "usage", PARTITIONS, NOW, live)
    flush_routes(["core"], engine, {}.get, PARTITIONS, NOW, live)
    table = live.take_changed()
    mine = live.get(b"core\x1fana")
    live.forget()
    assert len(live) == 0 and live.take_changed() == {}
    process_batch([_message("ana", 1)], engine, table.get, "usage", PARTITIONS, NOW, live)
    flush_routes(["core"], engine, table.get, PARTITIONS, NOW, live)
    loaded = live.get(b"core\x1fana")
    assert loaded is not None and loaded is not mine
    assert loaded.events == 2  # what the table held, and the new event


def test_a_dropped_state_is_not_written() -> None:
    engine, live = ScoringEngine(DetectorConfig()), LiveStates()
    process_batch([_message("ana", 0)], engine, {}.get, "usage", PARTITIONS, NOW, live)
    flush_routes(["core"], engine, {}.get, PARTITIONS, NOW, live)
    live.drop(b"core\x1fana")  # its state expired and was deleted meanwhile
    assert b"core\x1fana" not in live.take_changed()


def test_alerts_are_counted_once_per_incident_and_escalations_apart() -> None:
    engine, table = ScoringEngine(DetectorConfig()), {}
    published, new, escalations = [], Counter(), Counter()
    for batch in _simulated_batches():
        outcome = process_batch(batch, engine, table.get, "usage", PARTITIONS, NOW)
        table.update(outcome.states)
        published += outcome.alerts
        new.update(outcome.new_alerts)
        escalations.update(outcome.escalations)
    first_of_id: dict[str, AnomalyEvent] = {}
    for alert in published:
        first_of_id.setdefault(alert.alert_id, alert)
    later = [alert for alert in published if first_of_id[alert.alert_id] is not alert]
    assert later, "the simulation should have incidents that worsen"
    assert new == Counter((a.kind, a.severity) for a in first_of_id.values())
    assert escalations == Counter((a.kind, a.severity) for a in later)


def test_an_origin_silent_for_the_idle_time_stops_holding_the_others() -> None:
    progress = OriginProgress(idle_seconds=10.0)
    reached = progress.see(0, "1", 100.0, now=0.0, expected=("0", "1"))
    assert reached == {"0": float("-inf"), "1": 100.0}  # "0" expected: it holds everything
    assert progress.see(0, "1", 200.0, now=5.0) == {"0": float("-inf"), "1": 200.0}
    assert progress.see(0, "1", 300.0, now=11.0) == {"1": 300.0}  # "0" silent for 11 s
    assert progress.see(0, "0", 250.0, now=12.0) == {"0": 250.0, "1": 300.0}


def test_a_message_of_megabytes_makes_a_dead_letter_of_kilobytes() -> None:
    import hashlib

    from tokenradar.schemas.dead_letter import KEPT_KEY_BYTES

    huge = b'{"event_id": "e", "notes": "' + b"x" * 5_000_000 + b'"}'
    message = Received(b"k" * 100_000, huge, "usage", 0, 7)
    outcome = process_batch([message], ScoringEngine(DetectorConfig()), {}.get, "usage",
                            PARTITIONS, NOW)
    (letter,) = outcome.dead_letters
    assert letter.error_type == "too_large" and letter.fields is None  # not even read
    assert len(letter.model_dump_json()) < 3 * KEPT_KEY_BYTES
    assert (letter.original_size, letter.original_sha256) == (
        len(huge), hashlib.sha256(huge).hexdigest())
    assert base64.b64decode(letter.original_key_base64 or "") == b"k" * KEPT_KEY_BYTES
    assert not outcome.rekeyed and not outcome.states  # nothing of it travels further


def test_a_dead_letter_after_the_rekey_hop_names_the_producers_topic_offset_and_key() -> None:
    """Finding 8 of issue 14: it named the internal re-key topic, its offset and key."""
    def forwarded(user: str, number: int, minute: int, origin: int = 3) -> Received:
        event = {"event_id": f"{user}-{number}", "user_id": user, "team": "core",
                 "timestamp": f"2026-11-24T09:{minute:02d}:00Z", "model": "m",
                 "input_tokens": 100, "output_tokens": 10, "prompt": "private text"}
        return Received(b"core", json.dumps(event).encode(), "usage-by-user",
                        partition_for("core", PARTITIONS), 1000 + number, origin=origin,
                        origin_offset=40 + number, origin_key=f"key-{user}".encode())

    # ana's events from every input partition move the buffer on; bob's comes late, so it
    # is scored (and fails) as it arrives.
    messages = [forwarded("ana", number, 10 * (1 + number // PARTITIONS), number % PARTITIONS)
                for number in range(2 * PARTITIONS)]
    messages.append(forwarded("bob", 9, 1))
    outcome = process_batch(messages, _Failing(DetectorConfig()), {}.get, "usage",
                            PARTITIONS, NOW)
    (letter,) = outcome.dead_letters
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "usage", 3, 49)
    assert base64.b64decode(letter.original_key_base64 or "") == b"key-bob"
    assert letter.original_sha256 == DeadLetter.sha256(messages[-1].value)
    assert letter.extra_fields == 1 and "private" not in letter.model_dump_json()


def _no_id_dedupe() -> ScoringEngine:
    """An engine that remembers no event id: what it drops, only offsets recognised."""
    return ScoringEngine(DetectorConfig.model_validate({"scoring": {"dedupe_event_ids": 0}}))


def test_messages_read_again_after_a_crash_are_recognised_by_their_offsets() -> None:
    """The worker stored the states of batches up to 12 but committed offsets only up to
    batch 4 when it was killed: batches 4 to 12 are read again, some of their events
    days old, beyond any window of event ids. None is scored twice: the restarted run
    ends with the same states and alerts as one never interrupted."""
    batches = _simulated_batches(size=300)
    engine = _no_id_dedupe()
    table: dict[bytes, bytes] = {}
    alerts, again = [], []
    for number, batch in enumerate(batches):
        outcome = process_batch(batch, engine, table.get, "usage", PARTITIONS, NOW)
        table.update(outcome.states)
        alerts += [alert.alert_id for alert in outcome.alerts]
        if number == 12:  # killed: a new worker reads from the committed offset
            for reread in batches[4:13]:
                outcome = process_batch(reread, _no_id_dedupe(), table.get, "usage",
                                        PARTITIONS, NOW)
                table.update(outcome.states)
                again.append(outcome)
    assert sum(outcome.duplicates for outcome in again) == sum(map(len, batches[4:13]))
    assert not any(outcome.alerts or outcome.scored or outcome.late for outcome in again)
    uninterrupted, uninterrupted_table = [], {}
    for batch in batches:
        outcome = process_batch(batch, _no_id_dedupe(), uninterrupted_table.get, "usage",
                                PARTITIONS, NOW)
        uninterrupted_table.update(outcome.states)
        uninterrupted += [alert.alert_id for alert in outcome.alerts]
    assert alerts and alerts == uninterrupted
    assert table == uninterrupted_table


def test_a_message_forwarded_again_is_recognised_by_its_input_offset() -> None:
    """A crash between forwarding and committing forwards the input message again: the
    copy has a new offset in the re-key topic, and the same input offset."""
    first = _message("ana", 1)
    unkeyed = Received(None, first.value, "usage", 2, 40)
    engine = _no_id_dedupe()
    (forward,) = process_batch([unkeyed], engine, {}.get, "usage", PARTITIONS, NOW).rekeyed
    forwarded = [Received(forward.key, forward.value, "usage-by-user", first.partition,
                          rekey_offset, forward.origin, forward.origin_offset)
                 for rekey_offset in (0, 1)]  # the same input message, forwarded twice
    outcome = process_batch(forwarded, engine, {}.get, "usage", PARTITIONS, NOW)
    assert (outcome.duplicates, outcome.held) == (1, {"core": 1})
    flushed = flush_routes(["core"], engine, outcome.states.get, PARTITIONS, NOW)
    assert flushed.scored == 1


def test_a_model_missing_from_the_price_table_is_reported_by_the_batch_that_scored_it() -> None:
    engine = ScoringEngine(DetectorConfig())  # no [prices.models]: "m" takes the default
    outcome = process_batch([_message("ana", 1), _message("ana", 2)], engine, {}.get, "usage",
                            PARTITIONS, NOW)
    flushed = flush_routes(["core"], engine, outcome.states.get, PARTITIONS, NOW)
    again = flush_routes(["core"], engine, flushed.states.get, PARTITIONS, NOW)
    assert (outcome.unpriced_models, flushed.unpriced_models) == ([], ["m"])  # scored at flush
    assert again.unpriced_models == []


def _with_flood(count: int = 5_000) -> list[dict[str, object]]:
    """The simulated organisation, and ``count`` requests of one team's user in one
    minute of event time on day 8, each up to a second out of order."""
    events, _ = simulate(SimulationSpec(users=12, teams=2, days=9, seed=4,
                                        incidents_per_kind=1, shifted_teams=0))
    return with_flood(events, count, seed=9)


def test_a_flood_for_one_team_stays_bounded_and_gives_replays_alerts() -> None:
    """Each buffer record stays far below a producer request, every event is accounted
    for, and the bound releases the same events early in the batch step as in replay."""
    from tokenradar.replay import score_stream

    events = _with_flood()
    raws = [json.dumps(event) for event in events]
    engine = ScoringEngine(DetectorConfig())
    expected = [alert.model_dump(exclude={"detected_at"})
                for scored in score_stream(((parse_event(raw.encode()), raw) for raw in raws),
                                           engine) for alert in scored.result.alerts]
    messages = []
    for offset, (event, raw) in enumerate(zip(events, raws, strict=True)):
        route = str(event.get("team") or event["user_id"])
        messages.append(Received(route.encode(), raw.encode(), "usage",
                                 partition_for(route, PARTITIONS), offset))
    table: dict[bytes, bytes] = {}
    alerts, counted, most_held, largest = [], 0, 0, 0
    for start in range(0, len(messages), 400):
        outcome = process_batch(messages[start:start + 400], engine, table.get, "usage",
                                PARTITIONS, NOW)
        table.update(outcome.states)
        alerts += outcome.alerts
        counted += outcome.scored + outcome.late + outcome.duplicates
        most_held = max(most_held, *outcome.held.values())
        largest = max(largest, *(len(record) for record in outcome.states.values()))
    outcome = flush_routes(sorted({m.key.decode() for m in messages if m.key}), engine,
                           table.get, PARTITIONS, NOW)
    alerts += outcome.alerts
    counted += outcome.scored + outcome.late + outcome.duplicates
    assert counted == len(events) and not outcome.dead_letters
    assert most_held == DEFAULT_REORDER_MAX_EVENTS  # the bound was reached
    assert largest < 500_000  # a producer request is at most 1 MB
    assert expected, "the simulation should give alerts to compare"
    assert [alert.model_dump(exclude={"detected_at"}) for alert in alerts] == expected
