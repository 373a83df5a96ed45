"""What each detector finds, from event lists built by hand, and what it leaves alone."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from conftest import START, EventLists

from tokenradar.detectors import ScoringEngine
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent


def _alerts(engine: ScoringEngine, event_lists: EventLists,
            events: list[TokenUsageEvent]) -> list[AnomalyEvent]:
    return [alert for result in event_lists.score_all(engine, events) for alert in result.alerts]


@pytest.mark.parametrize("seed", range(5))
def test_steady_usage_raises_no_alert(event_lists: EventLists, seed: int) -> None:
    events = event_lists.steady(random.Random(seed), hours=200)
    results = event_lists.score_all(ScoringEngine(DetectorConfig()), events)
    assert [alert for result in results for alert in result.alerts] == []
    assert max(result.score for result in results) < DetectorConfig().scoring.alert_threshold


def test_one_huge_request_is_a_spike_on_tokens_per_request(event_lists: EventLists) -> None:
    # 42 requests in 7 hours: enough history for single requests, not yet for hours.
    events = event_lists.steady(random.Random(1), hours=7)
    huge = event_lists.event(999, events[-1].timestamp + timedelta(minutes=3), 300_000)
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, [*events, huge])
    assert [(a.kind, a.feature) for a in alerts] == [("spike", "tokens_per_request")]
    assert alerts[0].event_ids == [huge.event_id]
    assert alerts[0].observed == 300_000
    assert alerts[0].expected < 3000
    # The usual it is measured against counts what requests read from the prompt cache.
    assert "per request, cache reads included" in alerts[0].explanation


def test_huge_request_after_warm_up_alerts_naming_that_request(event_lists: EventLists) -> None:
    events = event_lists.steady(random.Random(2), hours=40)
    huge = event_lists.event(999, events[-1].timestamp + timedelta(minutes=3), 300_000)
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, [*events, huge])
    assert [a.kind for a in alerts] == ["spike"]
    assert huge.event_id in alerts[0].event_ids
    assert alerts[0].event_time == huge.timestamp


def _conversation(event_lists: EventLists, after: TokenUsageEvent, inputs: list[int],
                  minutes_apart: float = 2.0) -> list[TokenUsageEvent]:
    """One chat session with these input sizes, a turn every ``minutes_apart``."""
    return [event_lists.request(500 + turn, after.timestamp + timedelta(
                                    minutes=5 + minutes_apart * turn),
                                size, output_tokens=300, client=None, session="chat-1")
            for turn, size in enumerate(inputs)]


def test_a_conversation_whose_context_piles_up_is_no_single_request_spike(
        event_lists: EventLists) -> None:
    events = event_lists.steady(random.Random(4), hours=40)
    # Turns half an hour apart, so no hour of them is far above the usual 12,000.
    growing = _conversation(event_lists, events[-1],
                            [int(2000 * 1.4**turn) for turn in range(9)], minutes_apart=30)
    assert growing[-1].input_tokens > 10 * 2000  # past spike.min_request_ratio
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, events + growing)
    assert "tokens_per_request" not in [alert.feature for alert in alerts]


def test_two_conversations_without_session_ids_interleaved_are_no_single_request_spike(
        event_lists: EventLists) -> None:
    # A chat whose context grew to ~430,000 tokens, and a second conversation on the same
    # model between its turns: neither producer sends a session id, so the chat's turns
    # no longer look like one conversation's, but each re-sends a context already seen.
    events = event_lists.steady(random.Random(4), hours=40)
    growing = [event_lists.request(500 + turn, events[-1].timestamp + timedelta(
                   minutes=5 + 25 * turn), int(2000 * 1.4**turn), output_tokens=300,
                   client=None) for turn in range(17)]
    last = growing[-1].timestamp
    interleaved = []
    for turn in range(6):
        at = last + timedelta(minutes=2 + 2 * turn)
        interleaved.append(event_lists.request(700 + 2 * turn, at, 800 + 100 * turn,
                                               output_tokens=300, client=None))
        interleaved.append(event_lists.request(
            701 + 2 * turn, at + timedelta(seconds=40), growing[-1].input_tokens + 500 * turn,
            output_tokens=300, client=None))
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists,
                     events + growing + interleaved)
    assert growing[-1].input_tokens > 100 * 2000
    assert "tokens_per_request" not in [alert.feature for alert in alerts]


def test_a_document_pasted_into_a_conversation_is_a_single_request_spike(
        event_lists: EventLists) -> None:
    events = event_lists.steady(random.Random(4), hours=40)
    pasted = _conversation(event_lists, events[-1], [2000, 2200, 2400, 400_000])
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, events + pasted)
    assert [(alert.feature, alert.event_ids) for alert in alerts] == [
        ("tokens_per_request", [pasted[-1].event_id])]


def _reading(event_lists: EventLists, number: int, at: datetime, document: int,
             answer: int) -> TokenUsageEvent:
    """A ``document`` pasted in (input tokens), answered in ``answer`` output tokens."""
    return event_lists.request(number, at, document, output_tokens=answer, client=None,
                               session=f"doc-{number}")


@pytest.mark.parametrize(("answer", "spike"), [(300, False), (40_000, True)])
def test_a_long_document_answered_as_usual_is_read_not_a_spike(
        event_lists: EventLists, answer: int, spike: bool) -> None:
    # 80 times the usual request: a long document read and answered as usual is no
    # spike; as big a request answered at length is a bigger task, and a spike.
    events = event_lists.steady(random.Random(4), hours=40)
    pasted = _reading(event_lists, 900, events[-1].timestamp + timedelta(minutes=3),
                      160_000, answer)
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, [*events, pasted])
    assert (("spike", "tokens_per_request") in [(a.kind, a.feature) for a in alerts]) == spike


@pytest.mark.parametrize(("answer", "spike"), [(300, False), (20_000, True)])
def test_a_document_asked_about_again_within_the_hour_is_one_draw(
        event_lists: EventLists, answer: int, spike: bool) -> None:
    # Thirty times the usual request, sent again twice with new questions: the hour's
    # size is one document's, not three; three requests that big answered at length are
    # three bigger tasks, and a spike.
    events = event_lists.steady(random.Random(4), hours=40)
    start = events[-1].timestamp + timedelta(minutes=3)
    again = [event_lists.request(910 + turn, start + timedelta(minutes=5 * turn),
                                 60_000 + 500 * turn, output_tokens=answer, client=None,
                                 session="doc-chat", fingerprint=f"question-{turn}")
             for turn in range(3)]
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, [*events, *again])
    assert ("spike" in [a.kind for a in alerts]) == spike


def test_one_request_twenty_times_a_regular_users_usual_is_no_spike(
        event_lists: EventLists) -> None:
    # Requests within ~20% of each other, then one of 20x: a pasted file, a long document.
    # Single requests are heavy-tailed whatever the user's history says; 200x is a spike.
    events = event_lists.steady(random.Random(5), hours=40)
    later = events[-1].timestamp + timedelta(minutes=3)
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event_lists.score_all(engine, events, state)
    twenty = engine.score_event(state, event_lists.event(900, later, 40_000), later)
    assert twenty.alerts == [] and twenty.score < 0.5
    much_later = later + timedelta(hours=2)
    huge = engine.score_event(state, event_lists.event(901, much_later, 400_000), much_later)
    assert [(a.kind, a.feature) for a in huge.alerts] == [("spike", "tokens_per_request")]


def test_an_hour_that_is_one_big_request_is_judged_as_that_request(
        event_lists: EventLists) -> None:
    # 40x the usual, with three of the usual requests in its hour: far out for the hour's
    # mean request size (the user's hours are regular), a pasted document as one request.
    events = event_lists.steady(random.Random(5), hours=40)
    later = events[-1].timestamp + timedelta(minutes=61)
    usual = [event_lists.event(900 + k, later + timedelta(minutes=5 * k), 2000) for k in range(3)]
    big = event_lists.event(910, later + timedelta(minutes=20), 80_000)
    engine = ScoringEngine(DetectorConfig())
    results = event_lists.score_all(engine, [*events, *usual, big])
    assert [a for result in results for a in result.alerts] == []
    assert results[-1].score < DetectorConfig().scoring.alert_threshold


def _agent_session(event_lists: EventLists, start: datetime, turns: int, first: int,
                   session: str, every_seconds: float = 40.0) -> list[TokenUsageEvent]:
    """An agent's conversation: a turn every ``every_seconds``, each re-sending the
    context so far, growing from 4,000 tokens to the context window's 200,000."""
    return [event_lists.request(first + turn, start + timedelta(seconds=every_seconds * turn),
                                min(200_000, 4000 + 6000 * turn), output_tokens=300,
                                client="agent", session=session)
            for turn in range(turns)]


def _keyboard_days_with_agent_hours(event_lists: EventLists, days: int
                                    ) -> list[TokenUsageEvent]:
    """Days of six keyboard requests an hour, 09:00-15:00, each day ending with an hour
    of an agent's 60-turn conversation (about 9 million tokens)."""
    events: list[TokenUsageEvent] = []
    rng = random.Random(6)
    for day in range(days):
        morning = START + timedelta(days=day)
        events += event_lists.steady(rng, hours=6, start=morning, first=len(events) + 5000 * day)
        events += _agent_session(event_lists, morning + timedelta(hours=6, minutes=5), 60,
                                 first=100_000 + 1000 * day, session=f"agent-{day}")
    return events


def test_a_long_conversations_hour_is_judged_against_the_users_own_such_hours(
        event_lists: EventLists) -> None:
    # Each agent hour is ~700x the user's keyboard hour: against the keyboard hours every
    # one is a spike; against the user's other agent hours, none is. (The runaway and loop
    # detectors are off: they would name the last hour first.)
    events = _keyboard_days_with_agent_hours(event_lists, days=8)
    engine = ScoringEngine(DetectorConfig.model_validate(
        {"runaway_agent": {"enabled": False}, "scripted_loop": {"enabled": False}}))
    state = engine.new_state("ana")
    results = event_lists.score_all(engine, events, state)
    assert [a for result in results for a in result.alerts if a.kind == "spike"] == []
    assert state.slots["spike"].carried_hours.count >= 5
    # Six such conversations at once, a turn every 5 seconds, are out of line with them.
    start = events[-1].timestamp + timedelta(hours=20)
    many = sorted((event for agent in range(6) for event in _agent_session(
        event_lists, start + timedelta(seconds=agent), 360, first=200_000 + 1000 * agent,
        session=f"fast-{agent}", every_seconds=5.0)), key=lambda event: event.timestamp)
    alerts = [a for result in event_lists.score_all(engine, many, state) for a in result.alerts
              if a.kind == "spike"]
    assert alerts and {a.feature for a in alerts} == {"tokens_per_hour"}


def test_an_hour_of_many_moderate_requests_is_a_spike_on_tokens_per_hour(
        event_lists: EventLists) -> None:
    events = event_lists.steady(random.Random(3), hours=40, tokens=5000)
    # Each request under 4x the usual, far below spike.min_request_ratio; the hour is ~18x.
    # Fresh requests: without session ids, as many of one size would read as a
    # conversation re-sending one context (judged as one draw of size).
    start = events[-1].timestamp + timedelta(minutes=61)
    busy = [event_lists.request(100_000 + i, start + timedelta(seconds=100 * i), 18000,
                                output_tokens=0, session=f"fresh-{i}", fingerprint=f"fresh-{i}")
            for i in range(30)]
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, events + busy)
    # One incident: the alert may be re-published as the hour grows, under the same id.
    assert {(a.alert_id, a.kind, a.feature) for a in alerts} == {
        (alerts[0].alert_id, "spike", "tokens_per_hour")}
    assert alerts[0].observed >= DetectorConfig().spike.min_ratio * alerts[0].expected


def _keyboard_and_cached_hours(event_lists: EventLists, hours: int) -> list[TokenUsageEvent]:
    """Hours of six fresh 2,000-token requests, every other one six 40,000-token requests
    of which 38,000 are read from the prompt cache (an IDE re-reading its context): hourly
    tokens twenty times apart, fresh tokens alike."""
    rng = random.Random(11)
    events = []
    for hour in range(hours):
        cached = hour % 2 == 1
        for k in range(6):
            at = START + timedelta(hours=hour, minutes=10 * k + rng.uniform(0, 5))
            size = int((40_000 if cached else 2000) * rng.lognormvariate(0.0, 0.2))
            events.append(event_lists.request(len(events), at, size, output_tokens=200,
                                              session=f"s-{len(events)}",
                                              fingerprint=f"p-{len(events)}")
                          .model_copy(update={"cache_read_tokens": size - 2000 if cached
                                              else 0}))
    return events


def test_an_hour_of_fresh_tokens_is_judged_against_the_users_fresh_tokens(
        event_lists: EventLists) -> None:
    # Against the user's hourly totals (keyboard and cached hours mixed, twenty times
    # apart), an hour of twice the pace of five times bigger fresh requests is ordinary;
    # against the fresh tokens of their hours it is ten times the usual, and a spike.
    events = _keyboard_and_cached_hours(event_lists, hours=60)
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    assert [a for r in event_lists.score_all(engine, events, state) for a in r.alerts] == []
    start = events[-1].timestamp + timedelta(minutes=61)
    busy = [event_lists.request(100_000 + i, start + timedelta(seconds=280 * i), 10_000,
                                output_tokens=200, session=f"busy-{i}", fingerprint=f"b-{i}")
            for i in range(12)]
    alerts = [a for r in event_lists.score_all(engine, busy, state) for a in r.alerts]
    assert {(a.kind, a.feature) for a in alerts} == {("spike", "tokens_per_hour")}


def test_requests_read_mostly_from_the_cache_teach_their_fresh_size(
        event_lists: EventLists) -> None:
    # An IDE re-reading a 38,000-token context from the cache each turn: its requests are
    # its user's, 2,200 fresh tokens each, not 40,000, and not left out of the sizes.
    events = [event for event in _keyboard_and_cached_hours(event_lists, hours=12)
              if event.cache_read_tokens]
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event_lists.score_all(engine, events, state)
    sizes = state.slots["spike"].per_request
    assert sizes.count == len(events) >= DetectorConfig().spike.min_history_requests
    assert 2000 < 10 ** sizes.mean < 2500


def test_a_young_profiles_hour_is_judged_by_its_pace_with_the_evidence_shrunk(
        event_lists: EventLists) -> None:
    # Five hours known (no team to judge by): an hour of 25 times the usual requests is a
    # spike; one of 12 times, maybe the user's first agent session, is not yet.
    events = event_lists.steady(random.Random(8), hours=5)
    start = events[-1].timestamp + timedelta(minutes=61)

    def busy(count: int) -> list[TokenUsageEvent]:
        rng = random.Random(count)
        seconds = sorted(rng.uniform(0, 3300) for _ in range(count))
        return [event_lists.request(100_000 + i, start + timedelta(seconds=second),
                                    int(2000 * rng.lognormvariate(0.0, 0.2)), output_tokens=0,
                                    team=None, session=f"fresh-{i}", fingerprint=f"fresh-{i}")
                for i, second in enumerate(seconds)]

    events = [event.model_copy(update={"team": None}) for event in events]
    many = _alerts(ScoringEngine(DetectorConfig()), event_lists, events + busy(150))
    assert ("spike", "tokens_per_hour") in {(a.kind, a.feature) for a in many}
    fewer = _alerts(ScoringEngine(DetectorConfig()), event_lists, events + busy(70))
    assert "spike" not in {a.kind for a in fewer}


def test_a_young_profiles_hour_of_three_pasted_documents_is_no_spike(
        event_lists: EventLists) -> None:
    # Five hours known: three requests of 25x the usual in an hour are three pasted
    # documents (each, as a request, not one in a million), not an hour out of line.
    events = [event.model_copy(update={"team": None})
              for event in event_lists.steady(random.Random(8), hours=5)]
    start = events[-1].timestamp + timedelta(minutes=61)
    pasted = [event_lists.event(900 + k, start + timedelta(minutes=12 * k), 50_000, team=None)
              for k in range(3)]
    results = event_lists.score_all(ScoringEngine(DetectorConfig()), events + pasted)
    assert [a for result in results for a in result.alerts] == []


def _usual_size_through_a_busy_hour(event_lists: EventLists, history_hours: int
                                    ) -> list[float]:
    """The per-request baseline's mean (log10) after each request of a busy hour: 30
    requests, each about six times the usual size, after a history of 6 requests an
    hour of widely varying size."""
    rng = random.Random(1)
    events = []
    for hour in range(history_hours):
        for k in range(6):
            at = START + timedelta(hours=hour, minutes=10 * k + rng.uniform(0, 5))
            size = int(2000 * rng.lognormvariate(0.0, 0.7))
            events.append(event_lists.event(len(events), at, size, team=None))
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event_lists.score_all(engine, events, state)
    start = events[-1].timestamp + timedelta(minutes=61)
    means = []
    for i in range(30):
        busy = event_lists.event(10_000 + i, start + timedelta(minutes=2 * i),
                                 int(12_000 * rng.lognormvariate(0.0, 0.3)), team=None)
        engine.score_event(state, busy, busy.timestamp)
        means.append(state.slots["spike"].per_request.mean)
    return means


def test_requests_of_an_hour_far_above_the_usual_hours_are_not_learned(
        event_lists: EventLists) -> None:
    # Learned, the big requests raise the usual size the hour is judged by. Once the
    # hour's total passes spike.min_ratio times the user's usual hour (by the 8th
    # request here), they are not, before the pace-and-size test would say so.
    means = _usual_size_through_a_busy_hour(event_lists, history_hours=60)
    assert means[0] < means[6] == means[7] == means[-1]
    # From spike.min_history_hours on, the usual hour is the mean of the user's hours
    # (their pace times their widely varying mean request overstates it): the same.
    means = _usual_size_through_a_busy_hour(event_lists, history_hours=20)
    assert means[0] < means[6] == means[7] == means[-1]
    # A profile too young for its hours to say what its usual hour is goes on learning.
    means = _usual_size_through_a_busy_hour(event_lists, history_hours=6)
    assert means[5] < means[6] < means[7]


def test_burst_of_small_requests_is_a_rate_anomaly(event_lists: EventLists) -> None:
    events = event_lists.steady(random.Random(4), hours=40, tokens=500)
    loop = event_lists.burst(100, events[-1].timestamp + timedelta(minutes=11),
                             every_seconds=5, tokens=300)
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, events + loop)
    rate = [a for a in alerts if a.kind == "rate"]
    assert len(rate) == 1
    assert rate[0].feature == "requests_per_window"
    assert rate[0].observed >= DetectorConfig().rate.min_requests
    assert rate[0].event_time >= loop[0].timestamp


def test_rate_detector_ignores_the_burst_when_disabled(event_lists: EventLists) -> None:
    events = event_lists.steady(random.Random(4), hours=40, tokens=500)
    loop = event_lists.burst(100, events[-1].timestamp + timedelta(minutes=11),
                             every_seconds=5, tokens=300)
    config = DetectorConfig.model_validate({"rate": {"enabled": False}})
    assert [a for a in _alerts(ScoringEngine(config), event_lists, events + loop)
            if a.kind == "rate"] == []


def test_sustained_rise_is_drift_reported_once(event_lists: EventLists) -> None:
    rng = random.Random(5)
    before = event_lists.steady(rng, hours=60, tokens=2000)
    change = before[-1].timestamp + timedelta(minutes=30)
    after = event_lists.steady(rng, hours=40, tokens=8000, start=change, first=len(before))
    alerts = _alerts(ScoringEngine(DetectorConfig()), event_lists, before + after)
    drift = [a for a in alerts if a.kind == "drift"]
    assert len(drift) == 1
    assert drift[0].event_time > change
    assert drift[0].feature == "tokens_per_active_hour"
    assert drift[0].observed >= DetectorConfig().drift.min_ratio * drift[0].expected


def test_a_fall_in_usage_is_not_drift(event_lists: EventLists) -> None:
    rng = random.Random(6)
    before = event_lists.steady(rng, hours=60, tokens=8000)
    after = event_lists.steady(rng, hours=40, tokens=2000, start=before[-1].timestamp,
                               first=len(before))
    assert _alerts(ScoringEngine(DetectorConfig()), event_lists, before + after) == []


def test_users_are_judged_by_their_own_scale(event_lists: EventLists) -> None:
    """A heavy user's normal request would be a spike for a light user, and is not for them."""
    heavy = event_lists.steady(random.Random(7), hours=40, tokens=150_000, user="heavy")
    assert _alerts(ScoringEngine(DetectorConfig()), event_lists, heavy) == []
