"""Verdicts in the batch step: forwarded to their routing key, filed once, in state."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tokenradar.detectors import ScoringEngine
from tokenradar.detectors.verdicts import VerdictBook
from tokenradar.replay import replay_file
from tokenradar.schemas import DetectorConfig
from tokenradar.schemas.feedback import FeedbackVerdict
from tokenradar.streams.batch import (
    Received,
    Rekeyed,
    flush_routes,
    partition_for,
    process_batch,
    verdicts_state_key,
)

PARTITIONS = 4
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _verdict(alert_id: str = "a1", user: str = "ana", team: str | None = "core",
             at: datetime = NOW) -> FeedbackVerdict:
    return FeedbackVerdict(alert_id=alert_id, verdict="false", user_id=user, team=team,
                           kind="spike", timestamp=at, until=at + timedelta(days=14))


def _feedback(verdict: FeedbackVerdict, offset: int = 0) -> Received:
    return Received(verdict.alert_id.encode(), verdict.model_dump_json().encode(), "feedback",
                    1, offset)


def _forwarded(verdict: FeedbackVerdict, offset: int = 0) -> Received:
    route = verdict.routing_key
    return Received(route.encode(), verdict.model_dump_json().encode(), "by-user",
                    partition_for(route, PARTITIONS), offset, verdict=True)


def _batch(messages: list[Received], load=None):  # type: ignore[no-untyped-def]
    return process_batch(messages, ScoringEngine(DetectorConfig()), load or {}.get, "usage",
                         PARTITIONS, NOW, feedback_topic="feedback")


def test_a_verdict_from_the_feedback_topic_is_forwarded_keyed_by_its_routing_key() -> None:
    team_verdict, own_verdict = _verdict(), _verdict("a2", user="solo", team=None)
    outcome = _batch([_feedback(team_verdict), _feedback(own_verdict, 1)])
    assert outcome.rekeyed == [
        Rekeyed(b"core", _feedback(team_verdict).value, None, verdict=True),
        Rekeyed(b"solo", _feedback(own_verdict).value, None, verdict=True)]
    assert not outcome.states and not outcome.verdicts


def test_a_forwarded_verdict_is_filed_in_its_routing_keys_book_once() -> None:
    verdict = _verdict()
    outcome = _batch([_forwarded(verdict)])
    assert outcome.verdicts == {"false": 1}
    book = VerdictBook.from_bytes(outcome.states[verdicts_state_key("core")])
    assert book.records["a1"].user_id == "ana"
    again = _batch([_forwarded(verdict, 1)], outcome.states.get)  # a redelivery
    assert not again.verdicts and not again.states


def test_a_feedback_message_that_is_not_a_verdict_is_dead_lettered() -> None:
    broken = Received(b"a1", b'{"alert_id": "a1", "verdict": "maybe"}', "feedback", 0, 5)
    (letter,) = _batch([broken]).dead_letters
    assert letter.error_type == "invalid_verdict"
    assert "verdict" in letter.reason and letter.source_topic == "feedback"


def _events(day: int, huge: bool) -> list[dict]:  # type: ignore[type-arg]
    events = [{"event_id": f"ana-{day}-{i}", "user_id": "ana", "team": "core", "model": "m",
               "timestamp": (START + timedelta(days=day, minutes=7 * i + i * i % 5)).isoformat(),
               "input_tokens": 1000 + 10 * (i % 9), "output_tokens": 300}
              for i in range(60)]
    if huge:
        events.append({**events[-1], "event_id": f"ana-{day}-huge", "input_tokens": 250_000,
                       "timestamp": (START + timedelta(days=day, hours=8)).isoformat()})
    return events


def test_the_worker_step_and_replay_give_the_same_alerts_for_events_and_verdicts(
        tmp_path: Path) -> None:
    """A huge request on day 1, a false verdict, the same on day 2 (silenced), the
    silence's end, and the same on day 4 (alerted): in the batch step as in replay."""
    days = [_events(day, huge=day in (1, 2, 4)) for day in range(5)]
    events_path = tmp_path / "events.jsonl"
    events_path.write_text("".join(json.dumps(e) + "\n" for day in days for e in day))
    unjudged = replay_file(events_path, tmp_path / "unjudged.jsonl")
    first = json.loads((tmp_path / "unjudged.jsonl").read_text().splitlines()[0])
    assert first["kind"] == "spike" and unjudged.alerts_by_kind["spike"] >= 3
    verdict = FeedbackVerdict(
        alert_id=first["alert_id"], verdict="false", user_id="ana", team="core", kind="spike",
        timestamp=datetime.fromisoformat(first["event_time"]) + timedelta(minutes=5),
        until=START + timedelta(days=3))
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(verdict.model_dump_json() + "\n")
    judged = replay_file(events_path, tmp_path / "judged.jsonl", feedback=feedback)
    assert judged.verdicts == 1 and judged.silenced["verdict"] >= 1
    replayed = [json.loads(line) for line in (tmp_path / "judged.jsonl").read_text().splitlines()]
    assert len({a["alert_id"] for a in replayed}) == unjudged.alerts - judged.silenced["verdict"]

    # The worker's step: day 0-1 events, the verdict as it comes from the feedback topic,
    # then the rest; the verdict arrives once the day-1 alert is out, as a person gives it.
    engine, states, published = ScoringEngine(DetectorConfig()), {}, []
    partition = partition_for("core", PARTITIONS)

    def run(messages: list[Received]) -> None:
        outcome = process_batch(messages, engine, states.get, "usage", PARTITIONS, NOW,
                                feedback_topic="feedback")
        states.update(outcome.states)
        published.extend(outcome.alerts)
        forwarded = [Received(r.key, r.value, "by-user", partition, 0, verdict=r.verdict)
                     for r in outcome.rekeyed]
        if forwarded:
            run(forwarded)

    offsets = itertools.count()  # the input partition's, growing as Kafka's do

    def deliver(day_events: list[dict]) -> None:  # type: ignore[type-arg]
        run([Received(b"core", json.dumps(e).encode(), "usage", partition, next(offsets))
             for e in day_events])

    for day in days[:2]:
        deliver(day)
    run([Received(verdict.alert_id.encode(), verdict.model_dump_json().encode(), "feedback",
                  0, 0)])
    for day in days[2:]:
        deliver(day)
    published += flush_routes(["core"], engine, states.get, PARTITIONS, NOW).alerts
    assert [(a.alert_id, a.severity) for a in published] == [
        (a["alert_id"], a["severity"]) for a in replayed]
