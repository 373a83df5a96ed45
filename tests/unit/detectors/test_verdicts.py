"""Verdicts and calendar windows in the scoring core: what they silence, when, and how
the detectors learn meanwhile."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from tokenradar.detectors import ScoringEngine
from tokenradar.detectors.engine import detector_slot
from tokenradar.detectors.records import encode, record_bytes
from tokenradar.detectors.verdicts import MAX_BOOK_BYTES, Calendar, VerdictBook, silence_alerts
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent
from tokenradar.schemas.config import CalendarWindow
from tokenradar.schemas.feedback import FeedbackVerdict

START = datetime(2026, 11, 2, tzinfo=UTC)
"""A Monday."""
BURSTS_FROM_DAY = 21
BURSTS_ACCEPTED_UNTIL = START + timedelta(days=35)


def _working_day(day: int, burst: bool, rng: random.Random) -> list[TokenUsageEvent]:
    """Six requests of ~1,000 tokens an hour, 9 to 17; with ``burst``, 14:00 to 15:00 is
    forty requests of ~4,000 (a nightly build's hour of agent work, say)."""
    events = []
    for hour in range(9, 17):
        busy = burst and hour == 14
        for i in range(40 if busy else 6):
            at = START + timedelta(days=day, hours=hour, minutes=rng.uniform(0, 59))
            events.append(TokenUsageEvent(
                event_id=f"d{day}-h{hour}-{i}", user_id="ana", model="m", timestamp=at,
                input_tokens=int((4000 if busy else 1000) * rng.uniform(0.8, 1.2)),
                output_tokens=200, prompt_fingerprint=f"{rng.getrandbits(64):x}",
                session_id=f"d{day}-h{hour}-{i // 5}"))
    return sorted(events, key=lambda event: event.timestamp)


def _daily_bursts(config: DetectorConfig, verdict: str | None = None
                  ) -> list[tuple[int, AnomalyEvent]]:
    """(day, alert) over 50 days of which the weekdays from day 21 have a burst hour;
    with ``verdict``, given on the first alert 30 minutes after it, until day 35."""
    rng = random.Random(1)
    engine, book = ScoringEngine(config), VerdictBook()
    state = engine.new_state("ana")
    alerts = []
    for day in range(50):
        if (START + timedelta(days=day)).weekday() >= 5:
            continue
        for event in _working_day(day, day >= BURSTS_FROM_DAY, rng):
            for alert in engine.score_event(state, event, event.timestamp,
                                            verdicts=book).alerts:
                alerts.append((day, alert))
                if verdict is not None and not book:
                    until = None if verdict == "true" else BURSTS_ACCEPTED_UNTIL
                    book.file(_verdict(alert, verdict, event.timestamp + timedelta(minutes=30),
                                       until))
    return alerts


def _verdict(alert: AnomalyEvent, value: str, at: datetime,
             until: datetime | None) -> FeedbackVerdict:
    return FeedbackVerdict(alert_id=alert.alert_id, verdict=value,  # type: ignore[arg-type]
                           user_id=alert.user_id, team=alert.team, kind=alert.kind,
                           timestamp=at, until=until)


def test_without_a_verdict_the_daily_burst_alerts_every_day() -> None:
    alerts = _daily_bursts(DetectorConfig())
    assert [alert.kind for _, alert in alerts[:4]] == ["spike"] * 4
    assert len({day for day, _ in alerts}) >= 4


def test_an_expected_verdict_silences_the_burst_and_it_is_learned_as_usual() -> None:
    alerts = _daily_bursts(DetectorConfig(), verdict="expected")
    # One alert, the one judged; none while silenced, and none after the silence ends
    # on day 35 either: the bursts were learned as this user's usual hours.
    assert [(day, alert.kind) for day, alert in alerts] == [(BURSTS_FROM_DAY, "spike")]


def test_a_calendar_silence_only_hides_the_burst_which_alerts_again_after_it() -> None:
    window = CalendarWindow(name="migration", start=START + timedelta(days=BURSTS_FROM_DAY),
                            end=BURSTS_ACCEPTED_UNTIL, kinds=["spike"])
    alerts = _daily_bursts(DetectorConfig(calendar=[window]))
    days = [day for day, _ in alerts]
    assert days and min(days) >= 35  # silent in the window, not learned: alerts after it


def test_a_true_verdict_silences_nothing() -> None:
    assert ([(day, a.alert_id) for day, a in _daily_bursts(DetectorConfig(), verdict="true")]
            == [(day, a.alert_id) for day, a in _daily_bursts(DetectorConfig())])


def _score(engine: ScoringEngine, events: list[TokenUsageEvent], book: VerdictBook | None
           ) -> list[AnomalyEvent]:
    state = engine.new_state("ana")
    return [alert for event in events
            for alert in engine.score_event(state, event, event.timestamp,
                                            verdicts=book).alerts]


def test_a_silence_runs_from_the_verdicts_timestamp_to_its_end_in_event_time() -> None:
    rng = random.Random(1)
    events = [event for day in range(21) if (START + timedelta(days=day)).weekday() < 5
              for event in _working_day(day, day >= 14, rng)]
    engine = ScoringEngine(DetectorConfig())
    unjudged = _score(engine, events, None)
    first, second = unjudged[0], unjudged[1]
    # Silencing from just after the first alert to just after the second: only the
    # second is silenced, and the one after it alerts again.
    book = VerdictBook()
    book.file(_verdict(first, "false", first.event_time + timedelta(minutes=1),
                       second.event_time + timedelta(minutes=1)))
    judged = _score(engine, events, book)
    assert first.alert_id in {a.alert_id for a in judged}
    assert second.alert_id not in {a.alert_id for a in judged}
    assert {a.alert_id for a in judged} - {a.alert_id for a in unjudged}, \
        "the next incident after the silence is a new alert"


def test_a_calendar_window_for_another_team_silences_nobody_here() -> None:
    window = CalendarWindow(name="offsite", start=START, end=START + timedelta(days=60),
                            teams=["research"])
    def seen(alerts: list[tuple[int, AnomalyEvent]]) -> list[tuple[str, datetime]]:
        return [(alert.kind, alert.event_time) for _, alert in alerts]  # ids carry the config

    assert seen(_daily_bursts(DetectorConfig(calendar=[window]))) == seen(
        _daily_bursts(DetectorConfig()))


def test_a_window_that_stops_learning_leaves_the_kinds_baselines_as_they_were() -> None:
    rng = random.Random(2)
    before = [event for day in range(5) for event in _working_day(day, False, rng)]
    during = _working_day(5, True, rng)
    window = CalendarWindow(name="load test", start=START + timedelta(days=5),
                            end=START + timedelta(days=6), kinds=["spike", "rate"],
                            silence=False, learn=False)
    engine = ScoringEngine(DetectorConfig(calendar=[window]))
    state = engine.new_state("ana")
    for event in before:
        engine.score_event(state, event, event.timestamp)
    def numbers(names: set[str]) -> dict[str, bytes]:
        """The detectors' slots as stored: a snapshot of their numbers."""
        return {detector.name: record_bytes(detector_slot(state, detector))
                for detector in engine.detectors if detector.name in names}

    kept, gaming_before = numbers({"spike", "rate"}), numbers({"gaming"})
    for event in during:
        engine.score_event(state, event, event.timestamp)
    assert numbers({"spike", "rate"}) == kept
    assert numbers({"gaming"}) != gaming_before  # the other kinds learn on


def _verdicts_on(alert_id: str) -> list[FeedbackVerdict]:
    at = START + timedelta(days=3)
    return [
        FeedbackVerdict(alert_id=alert_id, verdict="false", user_id="ana", kind="spike",
                        timestamp=at, until=at + timedelta(days=14)),
        FeedbackVerdict(alert_id=alert_id, verdict="true", user_id="ana", kind="spike",
                        timestamp=at + timedelta(hours=2)),
        FeedbackVerdict(alert_id=alert_id, verdict="expected", user_id="ana", kind="spike",
                        timestamp=at + timedelta(hours=1), until=at + timedelta(days=2)),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_book_is_the_same_whatever_order_verdicts_reach_it(order: tuple[int, ...]) -> None:
    verdicts = _verdicts_on("a1") + _verdicts_on("a2")[:1]
    book = VerdictBook()
    for i in order:
        book.file(verdicts[i])
    book.file(verdicts[3])
    # On a1 the latest given wins (true: silences nothing); a2's false silences.
    assert book.records["a1"].verdict == "true"
    assert book.silenced("ana", (START + timedelta(days=4)).timestamp()) == {"spike"}
    assert VerdictBook.from_bytes(book.to_bytes()) == book


def test_a_verdict_silences_only_its_own_user_and_kind() -> None:
    book = VerdictBook()
    book.file(_verdicts_on("a1")[0])
    during = (START + timedelta(days=5)).timestamp()
    assert book.silenced("ana", during) == {"spike"}
    assert book.silenced("bo", during) == frozenset()
    assert book.silenced("ana", (START + timedelta(days=2)).timestamp()) == frozenset()


def test_a_book_of_another_record_or_version_is_refused() -> None:
    with pytest.raises(ValueError, match="verdict book schema version 9 is not"):
        VerdictBook.from_bytes(encode(9, VerdictBook()))
    with pytest.raises(ValueError, match="verdict book is not a stored verdict book"):
        VerdictBook.from_bytes(b'{"record":"verdicts","v":1,"verdicts":[]}')


def _team_alert(kind: str, user_id: str) -> AnomalyEvent:
    at = START + timedelta(days=4)
    return AnomalyEvent(alert_id=f"{user_id}-{kind}", user_id=user_id, team="core", kind=kind,
                        detector=kind, score=0.9, severity="high", event_time=at,
                        detected_at=at, feature="f", observed=2.0, expected=1.0,
                        event_ids=["e"], explanation="x", config_version="c")


def test_a_teams_own_alert_is_silenced_by_a_verdict_on_the_team_and_by_its_calendar() -> None:
    shift, member = _team_alert("population_shift", "team:core"), _team_alert("spike", "ana")
    time = shift.event_time.timestamp()
    book = VerdictBook()
    book.file(FeedbackVerdict(alert_id="s0", verdict="expected", user_id="team:core",
                              team="core", kind="population_shift", timestamp=START,
                              until=START + timedelta(days=14)))
    assert book.records["s0"].user_id == "team:core"
    assert silence_alerts([shift, member], Calendar([]), book, time) == (
        [member], [("population_shift", "verdict")])
    offsite = CalendarWindow(name="offsite", start=START, end=START + timedelta(days=7),
                             teams=["core"], kinds=["population_shift"])
    assert silence_alerts([shift, member], Calendar([offsite]), None, time) == (
        [member], [("population_shift", "calendar")])


def test_a_book_of_the_longest_names_stays_far_below_kafkas_request_limit() -> None:
    # 600 verdicts with every name at its longest (four-byte characters): the oldest go
    # first, the newest is kept, and the changelog record stays writable.
    book, start = VerdictBook(), datetime(2026, 11, 2, tzinfo=UTC)
    for n in range(600):
        newest = FeedbackVerdict(
            alert_id=f"{n:04d}" + "😀" * 124, verdict="false", user_id="😀" * 256,
            kind="😀" * 64, timestamp=start, until=start + timedelta(days=1, seconds=n))
        assert book.file(newest)
    assert book.records[newest.alert_id].until == newest.until.timestamp()
    assert len(book.to_bytes()) <= MAX_BOOK_BYTES * 1.05
