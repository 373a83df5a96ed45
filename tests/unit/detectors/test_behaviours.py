"""Behaviour detectors through the engine: gaming, scripted loop, runaway agent, new
pattern, creep; and the worker == replay guarantee on a stream that fires several kinds.

Every story starts with a person at work (weekdays 09:00-17:00 UTC, irregular gaps,
varied tokens) for 12 days from Monday 2 November 2026, so the usual-hours profile
exists; the behaviour follows on Monday 16 November (or that night).
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from conftest import START, EventLists

from tokenradar.detectors import ScoringEngine, UserState
from tokenradar.detectors.gaming import NO_LEVEL
from tokenradar.detectors.state import CODEC_VERSION
from tokenradar.detectors.team import TeamState
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent

MONDAY = datetime(2026, 11, 16, 10, tzinfo=UTC)
"""The Monday after the 12 days of history, mid-morning: a usual working hour."""
NIGHT = datetime(2026, 11, 17, 1, tzinfo=UTC)
"""The following night, 01:00 UTC: an hour this person never works."""


def _history(event_lists: EventLists, seed: int = 1, days: int = 12,
             user: str = "ana") -> list[TokenUsageEvent]:
    return event_lists.workdays(random.Random(seed), days, user=user)


def _alerts(event_lists: EventLists, events: list[TokenUsageEvent],
            config: DetectorConfig | None = None) -> list[AnomalyEvent]:
    engine = ScoringEngine(config or DetectorConfig())
    return [alert for result in event_lists.score_people(engine, events)
            for alert in result.alerts]


def _kinds(alerts: list[AnomalyEvent]) -> list[str]:
    return [alert.kind for alert in alerts]


# -- gaming ---------------------------------------------------------------------------

def _work_session(event_lists: EventLists, count: int, filler: int = 0,
                  input_factor: float = 1.0, output_factor: float = 1.0,
                  repeated: bool = True, user: str = "ana", start: datetime = MONDAY,
                  first: int = 10_000, per_session: int = 10, name: str = "padded"
                  ) -> list[TokenUsageEvent]:
    """Requests 5-15 min apart from ``start`` (a Monday), ``per_session`` to a session
    (named after ``name``), each the person's own prompt (3,000 input, 600 output,
    varied) times the factors, plus ``filler`` padding input tokens; ``repeated``: the
    same three prompts again and again."""
    rng = random.Random(2)
    events, at = [], start
    for i in range(first, first + count):
        at += timedelta(seconds=rng.uniform(300, 900))
        events.append(event_lists.request(
            i, at,
            int(3000 * input_factor * rng.lognormvariate(0.0, 0.4)) + filler,
            int(600 * output_factor * rng.lognormvariate(0.0, 0.4)), user=user,
            session=f"{user}-{name}-{(i - first) // per_session}",
            fingerprint=f"padded-{i % 3}" if repeated else f"{user}-fresh-{i}"))
    return events


def test_padded_prompts_with_repeats_are_one_gaming_incident_naming_the_ratio(
        event_lists: EventLists) -> None:
    padded = _work_session(event_lists, 60, filler=12_000)  # input ~5x, output unchanged
    gaming = [a for a in _alerts(event_lists, _history(event_lists) + padded)
              if a.kind == "gaming"]
    assert gaming, "padding went unnoticed"
    assert len({alert.alert_id for alert in gaming}) == 1
    ratio = re.search(r"Input tokens per request (\d+\.\d)x", gaming[0].explanation)
    assert ratio is not None, gaming[0].explanation
    assert DetectorConfig().gaming.min_input_ratio <= float(ratio.group(1)) <= 6.5
    assert gaming[0].observed > 2.5 * gaming[0].expected


def test_every_conversation_started_inflated_for_hours_is_padding_without_repeats(
        event_lists: EventLists) -> None:
    # Filler lifts the floor: every conversation starts ~4x, small ones as much as big.
    inflated = _work_session(event_lists, 60, filler=9_000, repeated=False)
    assert "gaming" in _kinds(_alerts(event_lists, _history(event_lists) + inflated))


def test_conversations_opened_with_a_document_now_and_then_are_not_padding(
        event_lists: EventLists) -> None:
    # Every other conversation starts with a pasted document (~4x), for hours: the
    # others still start at the usual sizes, so the floor has not moved.
    sessions = _work_session(event_lists, 60, repeated=False)
    documents = [event.model_copy(update={"input_tokens": event.input_tokens + 9_000})
                 if (i // 10) % 2 else event for i, event in enumerate(sessions)]
    assert "gaming" not in _kinds(_alerts(event_lists, _history(event_lists) + documents))


def test_prompts_repeated_earlier_do_not_make_fresh_big_inputs_padding(
        event_lists: EventLists) -> None:
    # The morning: the same three questions, at the usual size; then fresh big ones.
    repeats = _work_session(event_lists, 12)
    fresh = _work_session(event_lists, 20, filler=9_000, repeated=False,
                          start=repeats[-1].timestamp, first=20_000)
    assert "gaming" not in _kinds(_alerts(event_lists, _history(event_lists) + repeats + fresh))


def test_hours_of_huge_inputs_are_padding_even_without_repeats(
        event_lists: EventLists) -> None:
    huge = _work_session(event_lists, 60, filler=40_000, repeated=False)  # input ~14x
    gaming = [a for a in _alerts(event_lists, _history(event_lists) + huge)
              if a.kind == "gaming"]
    assert gaming, "hours of 14x inputs went unnoticed"
    # one big pasted document is not padding: it takes a run of conversations, an hour
    assert gaming[0].event_time - huge[0].timestamp >= timedelta(hours=1)
    run = re.search(r"last (\d+) conversations", gaming[0].explanation)
    assert run is not None and int(run.group(1)) >= 3, gaming[0].explanation


def _cached(events: list[TokenUsageEvent], share: float) -> list[TokenUsageEvent]:
    """The same requests with ``share`` of each one's input read from the prompt cache."""
    return [event.model_copy(update={"cache_read_tokens": int(share * event.input_tokens)})
            for event in events]


def test_hours_of_huge_inputs_mostly_from_the_cache_are_long_context_not_padding(
        event_lists: EventLists) -> None:
    # Agent and IDE sessions carry their context from turn to turn, read from the cache.
    huge = _cached(_work_session(event_lists, 60, filler=40_000, repeated=False), 0.8)
    assert "gaming" not in _kinds(_alerts(event_lists, _history(event_lists) + huge))
    fresh = _cached(_work_session(event_lists, 60, filler=40_000, repeated=False), 0.2)
    assert "gaming" in _kinds(_alerts(event_lists, _history(event_lists) + fresh))


def test_padding_with_repeats_is_gaming_even_from_the_cache(event_lists: EventLists) -> None:
    # The same padded prompt sent again is served from the cache: its repeats still tell.
    padded = _cached(_work_session(event_lists, 60, filler=12_000), 0.8)
    assert "gaming" in _kinds(_alerts(event_lists, _history(event_lists) + padded))


def _without_sessions(events: list[TokenUsageEvent]) -> list[TokenUsageEvent]:
    return [event.model_copy(update={"session_id": None}) for event in events]


def test_a_growing_conversation_without_session_ids_is_not_padding(
        event_lists: EventLists) -> None:
    # Each turn re-sends the conversation so far: input grows by the previous answer.
    rng = random.Random(5)
    turns, at, context = [], MONDAY, 30_000
    for i in range(60):
        at += timedelta(seconds=rng.uniform(120, 400))
        answer = int(600 * rng.lognormvariate(0.0, 0.3))
        turns.append(event_lists.request(40_000 + i, at, context, answer,
                                         fingerprint=f"turn-{i}"))
        context = 30_000 if i % 20 == 19 else context + answer + int(rng.uniform(50, 400))
    assert "gaming" not in _kinds(_alerts(event_lists, _without_sessions(
        _history(event_lists)) + turns))


def test_an_agent_at_its_context_limit_reading_from_the_cache_is_not_padding(
        event_lists: EventLists) -> None:
    # No session ids; the context grows to the model's limit and stays there, read from
    # the cache; one prompt in five asks again what an earlier one asked (a tool re-run).
    rng = random.Random(6)
    turns, at, context = [], MONDAY, 40_000
    for i in range(90):
        at += timedelta(seconds=rng.uniform(20, 60))
        answer = int(1200 * rng.lognormvariate(0.0, 0.5))
        again = i > 5 and rng.random() < 0.25
        turns.append(event_lists.request(
            50_000 + i, at, context, answer, client="agent",
            fingerprint=f"tool-{rng.randrange(i)}" if again else f"turn-{i}"
        ).model_copy(update={"cache_read_tokens": int(0.9 * context)}))
        context = min(190_000, context + answer + int(rng.uniform(500, 3000)))
    history = _without_sessions(_history(event_lists))
    assert "gaming" not in _kinds(_alerts(event_lists, history + turns))


def test_an_agent_whose_context_grows_unevenly_without_session_ids_is_not_padding(
        event_lists: EventLists) -> None:
    # Its input grows about 8% a turn, give or take 10%: one turn in four is smaller
    # than the last, so the inferred conversation restarts often, yet most turns are
    # a new high of their conversation. Filler is the same size again and again.
    rng = random.Random(8)
    turns, at, context = [], MONDAY, 4000.0
    for i in range(60):
        at += timedelta(seconds=rng.uniform(10, 30))
        turns.append(event_lists.request(60_000 + i, at, int(context * rng.uniform(0.9, 1.1)),
                                         int(600 * rng.lognormvariate(0.0, 0.5)),
                                         client="agent", fingerprint=f"step-{i}"))
        context = 4000.0 if i % 30 == 29 else context * 1.08
    history = _without_sessions(_history(event_lists))
    assert "gaming" not in _kinds(_alerts(event_lists, history + turns))
    # Filler of varying length (as prompts vary) restarts the inferred conversation.
    rng = random.Random(9)
    padded = [event.model_copy(update={"input_tokens": event.input_tokens - 40_000 + int(
                  40_000 * rng.lognormvariate(0.0, 0.25))})
              for event in _without_sessions(_work_session(event_lists, 60, filler=40_000,
                                                           repeated=False))]
    assert "gaming" in _kinds(_alerts(event_lists, history + padded))


def test_one_conversation_that_starts_big_is_not_padding(event_lists: EventLists) -> None:
    # A document pasted at the start, then asked about, repeats and all: one session.
    one = _work_session(event_lists, 14, filler=12_000, per_session=14)
    assert "gaming" not in _kinds(_alerts(event_lists, _history(event_lists) + one))


def _gaming_during(event_lists: EventLists, after_padding: list[TokenUsageEvent],
                   big: list[TokenUsageEvent]) -> list[AnomalyEvent]:
    """Gaming alerts on ``big``, after an hours-long padding run and ``after_padding``."""
    padded = _work_session(event_lists, 60, filler=12_000)
    alerts = _alerts(event_lists, _history(event_lists) + padded + after_padding + big)
    assert "gaming" in _kinds(alerts)  # the padding itself
    return [a for a in alerts if a.kind == "gaming" and a.event_time >= big[0].timestamp]


def _big_conversation(start: datetime, event_lists: EventLists) -> list[TokenUsageEvent]:
    return _work_session(event_lists, 14, filler=12_000, per_session=14, start=start,
                         first=30_000, name="big")


def test_a_conversation_at_the_usual_size_ends_a_padding_run(event_lists: EventLists) -> None:
    # Padding pads every session: one that starts at the usual size says it stopped,
    # and a conversation that starts big that evening, past the padding alert's
    # cooldown, is judged on its own (one: not padding).
    normal = _work_session(event_lists, 10, start=MONDAY + timedelta(hours=23), first=20_000,
                           name="normal")
    big = _big_conversation(MONDAY + timedelta(hours=35), event_lists)
    assert _gaming_during(event_lists, normal, big) == []


def test_a_pause_of_days_ends_a_padding_run(event_lists: EventLists) -> None:
    big = _big_conversation(MONDAY + timedelta(days=2, hours=12), event_lists)
    assert _gaming_during(event_lists, [], big) == []


def _light_conversation(event_lists: EventLists, start: datetime, number: int, turns: int,
                        filler: int = 0) -> list[TokenUsageEvent]:
    """One conversation of ``turns`` turns 3-6 min apart, re-sending its context each turn
    (no cache reads reported): each turn's own prompt (~3,000 input) plus ``filler``."""
    rng = random.Random(number)
    events, at, context = [], start, 0
    for turn in range(turns):
        prompt, answer = int(3000 * rng.lognormvariate(0.0, 0.4)), int(
            600 * rng.lognormvariate(0.0, 0.4))
        events.append(event_lists.request(
            number + turn, at, context + prompt + filler, answer, session=f"ana-c{number}",
            fingerprint=f"ana-{number + turn}"))
        context += prompt + answer
        at += timedelta(seconds=rng.uniform(180, 360))
    return events


def _light_user(event_lists: EventLists, monday: list[TokenUsageEvent], days: int
                ) -> list[TokenUsageEvent]:
    """A light user: one conversation of 10 turns a working day for ``days`` days from
    Monday 2 November, then ``monday``'s."""
    history = [event for day in range(days)
               if (START + timedelta(days=day)).weekday() < 5
               for event in _light_conversation(
                   event_lists, START + timedelta(days=day, hours=10), 1000 * (day + 1), 10)]
    return history + monday


def test_a_light_users_padded_conversations_are_judged_against_their_few_starts(
        event_lists: EventLists) -> None:
    # Six conversations in a week and a half, then five started ~10x for hours: the
    # first padded day must not be learned as their usual. (Six starts say only roughly
    # where their usual is, so four such starts are not yet enough: see
    # test_a_newcomers_first_small_starts_do_not_make_their_usual_work_padding.)
    padded = [event for number in range(50_000, 100_000, 10_000)
              for event in _light_conversation(
                  event_lists, MONDAY + timedelta(minutes=40 * (number // 10_000 - 5)),
                  number, 4, filler=30_000)]
    alerts = _alerts(event_lists, _light_user(event_lists, padded, days=8))
    assert "gaming" in _kinds(alerts)


def test_a_newcomers_first_small_starts_do_not_make_their_usual_work_padding(
        event_lists: EventLists) -> None:
    # A newcomer's first three conversations happen to open small (a line or two, a short
    # page); from then on they open at 4,000-14,000 tokens, three a day, as their work
    # does, answers unchanged. Three starts only roughly say where their usual is: ten
    # bigger ones say it was underestimated, not that each was padded.
    rng = random.Random(4)
    starts = [700, 500, 3000, 4700, 5400, 4200, 8000, 6300, 4400, 8300, 4900, 13600, 7900]
    events, number = [], 60_000
    for conversation, first in enumerate(starts):
        at = MONDAY + timedelta(days=conversation // 3, hours=2 * (conversation % 3))
        context = first
        for turn in range(6):
            events.append(event_lists.request(
                number, at + timedelta(minutes=3 * turn), context,
                int(400 * rng.lognormvariate(0.0, 0.4)), user="bo",
                session=f"bo-{conversation}", fingerprint=f"bo-{number}"))
            context += 900
            number += 1
    assert "gaming" not in _kinds(_alerts(event_lists, events))


def _cached_conversation(event_lists: EventLists, start: datetime, number: int,
                         first: int, filler: int = 0, added: int = 250, turns: int = 6,
                         carried: float = 0.9) -> list[TokenUsageEvent]:
    """One conversation of ``turns`` turns 1-3 min apart, its producer reporting cache
    reads: it starts at ``first`` input tokens; each later turn re-sends the conversation
    so far (``carried`` of the previous turn's input read from the cache) with the last
    answer and ``added`` tokens more (the next question, a tool result); ``filler``
    padding tokens go into every turn, fresh."""
    rng = random.Random(number)
    events, at, context, previous = [], start, first, 0
    for turn in range(turns):
        answer = int(300 * rng.lognormvariate(0.0, 0.3))
        events.append(event_lists.request(
            number + turn, at, context + filler, answer, client="chat",
            session=f"ana-c{number}", fingerprint=f"ana-{number + turn}",
        ).model_copy(update={"cache_read_tokens": int(carried * previous)}))
        previous = context
        context += answer + int(added * rng.lognormvariate(0.0, 0.4))
        at += timedelta(seconds=rng.uniform(60, 180))
    return events


def _cached_history(event_lists: EventLists, days: int = 12) -> list[TokenUsageEvent]:
    """Three conversations a working day from Monday 2 November, each opening at ~500
    tokens (varied, a short page at most), later turns read mostly from the cache."""
    rng = random.Random(11)
    return [event for day in range(days) if (START + timedelta(days=day)).weekday() < 5
            for conversation in range(3)
            for event in _cached_conversation(
                event_lists, START + timedelta(days=day, hours=10 + 2 * conversation),
                1000 * (10 * day + conversation + 1), int(500 * rng.lognormvariate(0.0, 0.5)))]


def _padded_conversations(event_lists: EventLists, count: int) -> list[TokenUsageEvent]:
    """Conversations 45 minutes apart on Monday morning, each opening at ~500 tokens and
    every later turn carrying ~1,500 tokens of fresh filler beside what the cache serves."""
    return [event for conversation in range(count)
            for event in _cached_conversation(
                event_lists, MONDAY + timedelta(minutes=45 * conversation),
                900_000 + 1000 * conversation, 500, filler=1500)]


def test_padding_in_every_turn_of_a_few_conversations_is_gaming(
        event_lists: EventLists) -> None:
    # Three conversations in a morning, each opening ~4x (alone, a person's own draws),
    # and every later turn carrying ~1,500 tokens of fresh filler where the usual turn
    # adds a few hundred to what the cache serves.
    padded = _padded_conversations(event_lists, 3)
    alerts = [a for a in _alerts(event_lists, _cached_history(event_lists) + padded)
              if a.kind == "gaming"]
    assert alerts, "padding in every turn went unnoticed"
    assert "later turns" in alerts[0].explanation, alerts[0].explanation


def test_a_gaming_run_stored_before_conversations_had_levels_goes_on(
        event_lists: EventLists) -> None:
    # User state 7 stored the run's starts without their conversations' levels: those
    # are unknown (and no level is known before them), the starts are judged as before.
    padded = _padded_conversations(event_lists, 4)
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    for event in _cached_history(event_lists) + padded[:12]:  # two padded conversations
        engine.score_event(state, event, event.timestamp)
    version, body = msgspec.msgpack.decode(state.to_bytes())
    assert version == CODEC_VERSION
    gaming = body[6]["gaming"]
    assert len(gaming[3]) == 2  # the run holds the two padded conversations' starts
    body[6]["gaming"] = gaming[:-6]  # as version 7 stored it
    restored = UserState.from_bytes(msgspec.msgpack.encode([7, body]))
    for event in padded[12:]:
        engine.score_event(restored, event, event.timestamp)
        engine.score_event(state, event, event.timestamp)
    slot, uninterrupted = restored.slots["gaming"], state.slots["gaming"]
    assert slot.run == uninterrupted.run and slot.start_bins == uninterrupted.start_bins
    assert slot.run_levels[:2] == [NO_LEVEL] * 2
    assert slot.run_levels[2:] == uninterrupted.run_levels[2:]


def test_conversations_that_grow_from_the_cache_are_not_padding(
        event_lists: EventLists) -> None:
    # The same morning without filler but with long contexts: each opens ~4x and grows
    # by big tool results (~10x the usual turn's fresh input), most of every later turn
    # read from the cache.
    grown = [event for conversation in range(3)
             for event in _cached_conversation(
                 event_lists, MONDAY + timedelta(minutes=45 * conversation),
                 900_000 + 1000 * conversation, 2000, added=5000, turns=10, carried=0.95)]
    alerts = _alerts(event_lists, _cached_history(event_lists) + grown)
    assert "gaming" not in _kinds(alerts)


def test_a_bigger_task_with_output_up_too_is_not_gaming(event_lists: EventLists) -> None:
    bigger = _work_session(event_lists, 60, input_factor=5.0, output_factor=5.0)
    assert "gaming" not in _kinds(_alerts(event_lists, _history(event_lists) + bigger))


# -- scripted loop --------------------------------------------------------------------

def _loop(event_lists: EventLists, regular: bool, count: int = 120,
          user: str = "ana") -> list[TokenUsageEvent]:
    """An hour of the same prompt every ~30 s: within 1% (a script) or 0.3x-1.7x (a person)."""
    rng = random.Random(5)
    events, at = [], MONDAY
    for i in range(count):
        events.append(event_lists.request(
            20_000 + i, at, int(2000 * rng.lognormvariate(0.0, 0.1)), 400, user=user,
            client="cli", fingerprint="the-same-prompt"))
        jitter = rng.uniform(0.99, 1.01) if regular else rng.uniform(0.3, 1.7)
        at += timedelta(seconds=30 * jitter)
    return events


def test_regular_requests_for_an_hour_are_a_scripted_loop_found_within_the_run_length(
        event_lists: EventLists) -> None:
    history, loop = _history(event_lists), _loop(event_lists, regular=True)
    loops = [a for a in _alerts(event_lists, history + loop) if a.kind == "scripted_loop"]
    assert len(loops) == 1
    found_at = next(i for i, e in enumerate(loop) if e.timestamp == loops[0].event_time)
    assert found_at <= DetectorConfig().scripted_loop.min_regular_requests + 3


def test_a_loop_delivered_slightly_out_of_order_is_still_a_scripted_loop(
        event_lists: EventLists) -> None:
    # Producers on several hosts: every fifth request arrives after the one sent next.
    loop = _loop(event_lists, regular=True)
    for i in range(0, len(loop) - 1, 5):
        loop[i], loop[i + 1] = loop[i + 1], loop[i]
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    results = event_lists.score_all(engine, _history(event_lists) + loop, state)  # as sent
    assert "scripted_loop" in _kinds([a for result in results for a in result.alerts])


@pytest.mark.parametrize(("period", "jitter"), [(30.0, 2.0), (30.0, 3.0), (60.0, 5.0)])
def test_a_loop_with_jittered_timestamps_delivered_shuffled_is_still_found(
        event_lists: EventLists, period: float, jitter: float) -> None:
    """Timestamps taken as each response ends (a few seconds of jitter), delivered up to
    2 minutes out of order: replay's reorder buffer, then the detector's near beats."""
    from tokenradar.replay import score_stream

    found = 0
    for seed in range(5):
        rng = random.Random(seed)
        loop = [event_lists.request(20_000 + i, MONDAY + timedelta(
                    seconds=period * i + rng.uniform(-jitter, jitter)), 2000, 400,
                    client="cli", fingerprint="the-same-prompt") for i in range(60)]
        arrivals = _history(event_lists) + sorted(
            loop, key=lambda e: e.epoch_seconds + rng.uniform(0, 120))
        scored = list(score_stream(((e, e.model_dump_json()) for e in arrivals),
                                   ScoringEngine(DetectorConfig())))
        assert not any(s.late for s in scored)
        first = next((s.event for s in scored
                      if "scripted_loop" in _kinds(s.result.alerts)), None)
        found += first is not None and first.epoch_seconds < loop[40].epoch_seconds
    assert found == 5


def test_a_loop_of_three_prompts_is_found_without_fingerprints(event_lists: EventLists) -> None:
    # A producer that sends no prompt_fingerprint: the prompts' own token counts repeat.
    sizes = [(1200, 300), (2600, 450), (5100, 200)]
    loop = [event.model_copy(update={
                "prompt_fingerprint": None,
                "input_tokens": sizes[i % 3][0] + i % 7, "output_tokens": sizes[i % 3][1]})
            for i, event in enumerate(_loop(event_lists, regular=True))]
    assert "scripted_loop" in _kinds(_alerts(event_lists, _history(event_lists) + loop))


def _every(event_lists: EventLists, seconds: float, count: int, start: datetime = MONDAY
           ) -> list[TokenUsageEvent]:
    """A script: the same prompt every ``seconds`` (within 0.5%)."""
    rng = random.Random(6)
    return [event_lists.request(30_000 + i, start + timedelta(seconds=seconds * (
                i + rng.uniform(-0.005, 0.005))), 2000, 400, client="cli",
                                fingerprint="nightly-report") for i in range(count)]


def test_a_loop_every_five_minutes_is_found_within_ten_beats_while_its_owner_works(
        event_lists: EventLists) -> None:
    loop = _every(event_lists, 300.0, 24)
    work = _work_session(event_lists, 12, repeated=False)  # new prompts 5-15 min apart
    events = _history(event_lists) + sorted(loop + work, key=lambda e: e.timestamp)
    loops = [a for a in _alerts(event_lists, events) if a.kind == "scripted_loop"]
    assert loops, "the person's own requests in between hid the script"
    assert loops[0].event_time <= loop[9].timestamp


def test_a_request_between_a_loops_first_two_does_not_halve_its_period(
        event_lists: EventLists) -> None:
    loop = _every(event_lists, 30.0, 40)
    between = event_lists.request(29_999, loop[0].timestamp + timedelta(seconds=15), 2500,
                                  fingerprint="a-question")
    events = _history(event_lists) + [loop[0], between, *loop[1:]]
    loops = [a for a in _alerts(event_lists, events) if a.kind == "scripted_loop"]
    assert loops and loops[0].event_time <= loop[12].timestamp


def _pipeline_day(event_lists: EventLists, day: int, beat: float, count: int = 60
                  ) -> list[TokenUsageEvent]:
    """A machine identity's run on day ``day`` after MONDAY: the same prompt every
    ``beat`` seconds (within 0.5%), at an hour that moves from day to day."""
    rng = random.Random(day)
    start = MONDAY + timedelta(days=day, hours=rng.uniform(-9, 12))
    return [event_lists.request(40_000 + 1_000 * day + i, start + timedelta(
                seconds=beat * (i + rng.uniform(-0.005, 0.005))), 2000, 400,
                user="ads-pipeline", client="cli", fingerprint="refresh-ads")
            for i in range(count)]


def test_a_pipeline_looping_every_day_at_its_beat_is_learned_and_found_at_another(
        event_lists: EventLists) -> None:
    """Issue 13, item 3: a machine identity looping from its first requests (as every
    service account does on the day tokenradar starts): nothing else is known of it, so
    that loop is its own pattern, learned and not raised; its beat on later days stays
    quiet, and a new beat is found."""
    days = [_pipeline_day(event_lists, day, 5.0) for day in range(6)]
    changed = _pipeline_day(event_lists, 6, 60.0)
    loops = [a for a in _alerts(event_lists, [e for day in days for e in day] + changed)
             if a.kind == "scripted_loop"]
    found_on = sorted({(alert.event_time - MONDAY).days for alert in loops})
    assert found_on == [(changed[0].timestamp - MONDAY).days], (
        f"found on days {found_on}: only the new beat is a change")
    # Once tokenradar knows the team's hours, a new identity in it is no startup: the
    # first loop of its first requests is raised.
    team = [e for member in range(3)
            for e in _history(event_lists, seed=member, user=f"m{member}")]
    assert "scripted_loop" in _kinds(_alerts(event_lists, team + days[0]))


def test_a_new_identitys_loop_in_a_team_of_light_users_is_raised(
        event_lists: EventLists) -> None:
    """A team whose one member has worked two days has too few member-days for its hours
    to be known, but tokenradar has not just started: a new identity's first loop there
    is raised, not learned as a service account's on the first day (full-size org 11: a
    light team's member's loop in its second week was learned unraised)."""
    light_team = _history(event_lists, seed=3, days=2, user="m0")
    newcomer = _loop(event_lists, regular=True, user="ana")
    assert "scripted_loop" in _kinds(_alerts(event_lists, light_team + newcomer))
    # On the day tokenradar starts, the same loop is all it knows of the identity.
    assert "scripted_loop" not in _kinds(_alerts(event_lists, newcomer))


def _round_the_clock(event_lists: EventLists, days: int, user: str = "etl-runner",
                     client: str = "api", start: datetime = MONDAY,
                     weekdays_only: bool = False) -> list[TokenUsageEvent]:
    """A machine identity at work around the clock from ``start``'s midnight: a batch of
    varied prompts every 4-12 minutes, every hour of every day (of every weekday)."""
    rng = random.Random(9)
    events, at = [], start.replace(hour=0)
    while at < start.replace(hour=0) + timedelta(days=days):
        if not weekdays_only or at.weekday() < 5:
            events.append(event_lists.request(
                50_000 + len(events), at, int(3000 * rng.lognormvariate(0.0, 0.5)), 400,
                user=user, client=client, fingerprint=f"{user}-job-{rng.randrange(40)}"))
        at += timedelta(seconds=rng.uniform(240, 720))
    return events


def test_a_loop_of_an_identity_that_runs_around_the_clock_is_its_job(
        event_lists: EventLists) -> None:
    """Issue 13, item 3: an identity at work every hour of its days is a machine; a loop
    is what machines do, so it is not raised. A person's same loop is."""
    machine = _round_the_clock(event_lists, days=4, user="ana")
    loop = [e.model_copy(update={"timestamp": e.timestamp + timedelta(days=4, hours=3)})
            for e in _loop(event_lists, regular=True)]
    assert "scripted_loop" in _kinds(_alerts(event_lists, _history(event_lists) + loop))
    assert "scripted_loop" not in _kinds(_alerts(event_lists, machine + loop))


def test_as_many_requests_with_human_gaps_are_not_a_scripted_loop(
        event_lists: EventLists) -> None:
    human = _loop(event_lists, regular=False)
    assert "scripted_loop" not in _kinds(_alerts(event_lists, _history(event_lists) + human))


# -- runaway agent --------------------------------------------------------------------

def _agent(event_lists: EventLists, start: datetime, hours: float = 3.0,
           user: str = "ana", turns: int = 40) -> list[TokenUsageEvent]:
    """An agent client every ~20 s (10-30 s), its context growing within ``turns``-turn
    sessions."""
    rng = random.Random(7)
    events: list[TokenUsageEvent] = []
    at = start
    while at < start + timedelta(hours=hours):
        turn = len(events) % turns
        events.append(event_lists.request(
            30_000 + len(events), at, int(4000 * (1 + 0.1 * turn) * rng.lognormvariate(0, 0.2)),
            int(500 * rng.lognormvariate(0.0, 0.3)), user=user, client="agent",
            session=f"{user}-agent-{len(events) // turns}", fingerprint=f"agent-{len(events)}"))
        at += timedelta(seconds=rng.uniform(10, 30))
    return events


def test_agent_running_through_the_night_is_a_runaway_agent(event_lists: EventLists) -> None:
    night = _agent(event_lists, NIGHT)
    runaway = [a for a in _alerts(event_lists, _history(event_lists) + night)
               if a.kind == "runaway_agent"]
    # One incident, one alert: re-published under its id as it grows more certain.
    assert len({a.alert_id for a in runaway}) == 1
    assert runaway[0].event_time - NIGHT <= timedelta(minutes=30)


def test_one_conversation_late_at_night_is_judged_only_once_it_outlasts_one(
        event_lists: EventLists) -> None:
    """A person working late in one growing agent conversation for 40 minutes is no
    runaway: it scores past the bar by 25 minutes, as a runaway's first minutes do, and
    then it ends (issue 13: every false runaway on people was one such session). An
    agent that keeps starting new conversations is judged at once; one that goes on in
    the same conversation, once it has outlasted one."""
    def runaway_delay(agent: list[TokenUsageEvent]) -> timedelta | None:
        alerts = _alerts(event_lists, _history(event_lists) + agent)
        return next((a.event_time - NIGHT for a in alerts if a.kind == "runaway_agent"),
                    None)
    assert runaway_delay(_agent(event_lists, NIGHT, hours=0.67, turns=1_000)) is None
    restarting = runaway_delay(_agent(event_lists, NIGHT, hours=0.67, turns=30))
    assert restarting is not None and restarting <= timedelta(minutes=30)
    endless = runaway_delay(_agent(event_lists, NIGHT, hours=3, turns=1_000))
    assert endless is not None and endless <= timedelta(minutes=55)


def test_a_night_agent_is_called_a_runaway_agent_not_first_a_spike(
        event_lists: EventLists) -> None:
    # Its first hour is also a spike, but the runaway is building up: the spike waits
    # for it and is folded in, so the first alert names what happened.
    alerts = _alerts(event_lists, _history(event_lists) + _agent(event_lists, NIGHT))
    assert alerts and alerts[0].kind == "runaway_agent"
    assert {a.kind for a in alerts} <= {"runaway_agent"}


def test_a_slower_runaway_on_a_new_client_is_not_first_a_new_pattern(
        event_lists: EventLists) -> None:
    # Two days of history: the runaway takes hours to be sure. Its never used agent
    # client at an unusual hour is also a new pattern, folded into the runaway; its
    # first hours, 100x this user's usual hour, are a spike meanwhile.
    history = _history(event_lists, days=2)
    start = history[-1].timestamp.replace(hour=1, minute=0) + timedelta(days=1)
    alerts = _alerts(event_lists, history + _agent(event_lists, start, hours=8))
    assert alerts and alerts[0].event_time - start > timedelta(minutes=30)
    assert {a.kind for a in alerts} == {"spike", "runaway_agent"}


def test_a_slower_runaway_is_found_about_as_soon_as_a_faster_one(
        event_lists: EventLists) -> None:
    # The evidence is the run's time at hours the user never works, not its request
    # count: the same agent at half the pace is no less a runaway.
    def first_alert(agent: list[TokenUsageEvent]) -> timedelta:
        alerts = _alerts(event_lists, _history(event_lists) + agent)
        return next(a.event_time for a in alerts if a.kind == "runaway_agent") - NIGHT
    fast = _agent(event_lists, NIGHT)
    assert abs(first_alert(fast[::2]) - first_alert(fast)) <= timedelta(minutes=5)


def test_an_identity_that_runs_around_the_clock_has_no_runaway_nights(
        event_lists: EventLists) -> None:
    """Issue 13, item 3: a machine's agent, at work around the clock on weekdays for two
    weeks, goes on into a Saturday, a day it has not worked: a machine has no nights to
    be left running in. A person whose weeks end on Friday is another matter."""
    machine = _round_the_clock(event_lists, days=12, client="agent", start=START,
                               weekdays_only=True)
    saturday = START.replace(hour=0) + timedelta(days=12, hours=1)
    night = _agent(event_lists, saturday, hours=4, user="etl-runner")
    assert "runaway_agent" not in _kinds(_alerts(event_lists, machine + night))
    person = _history(event_lists, user="etl-runner")
    assert "runaway_agent" in _kinds(_alerts(event_lists, person + night))


def test_a_new_joiners_agent_on_a_weekday_not_seen_yet_is_no_runaway(
        event_lists: EventLists) -> None:
    # Four active days, Monday to Thursday; on Friday, at the hours they have worked,
    # an agent runs all afternoon. A week has not shown every weekday a person works.
    history = _history(event_lists, days=4)
    friday = history[-1].timestamp.replace(hour=10, minute=0) + timedelta(days=1)
    alerts = _alerts(event_lists, history + _agent(event_lists, friday, hours=5))
    assert "runaway_agent" not in _kinds(alerts)


def test_a_new_joiner_working_the_teams_late_shift_is_no_runaway(
        event_lists: EventLists) -> None:
    # The team works 09:00-17:00 and evenings 18:00-22:00; its new member's first
    # evening agent run is at an hour the team works, not in the member's night.
    rng = random.Random(12)
    team = []
    for member in range(6):
        team += event_lists.workdays(random.Random(member), 12, user=f"m{member}")
        evening = [e.model_copy(update={"timestamp": e.timestamp + timedelta(hours=9),
                                        "event_id": f"{e.event_id}-late"})
                   for e in event_lists.workdays(random.Random(50 + member), 12,
                                                 user=f"m{member}")
                   if rng.random() < 0.5]
        team += [e for e in evening if e.timestamp.hour < 22]
    joiner = _history(event_lists, days=3, user="ana")
    start = joiner[-1].timestamp.replace(hour=19, minute=0) + timedelta(days=1)
    alerts = _alerts(event_lists, team + joiner + _agent(event_lists, start, hours=2.5))
    assert "runaway_agent" not in {a.kind for a in alerts if a.user_id == "ana"}
    # Without the team, 19:00 is unseen (weakly, on three days): a longer run is one.
    alone = _alerts(event_lists, joiner + _agent(event_lists, start, hours=4))
    assert "runaway_agent" in _kinds(alone)


def test_a_new_joiners_evening_is_off_though_teammates_elsewhere_work_then(
        event_lists: EventLists) -> None:
    # Half the team works 09:00-17:00 eight time zones west (17:00-01:00 UTC): in their
    # own time they work days, so the team's evenings are quiet, and the new member's
    # evening agent run (from 19:00, their own time too) is a runaway.
    team = []
    for member in range(6):
        west = timedelta(hours=8 * (member % 2))
        team += [e.model_copy(update={"timestamp": e.timestamp + west})
                 for e in event_lists.workdays(random.Random(member), 12, user=f"m{member}")]
    joiner = _history(event_lists, days=3, user="ana")
    start = joiner[-1].timestamp.replace(hour=19, minute=0) + timedelta(days=1)
    alerts = _alerts(event_lists, team + joiner + _agent(event_lists, start, hours=4))
    assert "runaway_agent" in {a.kind for a in alerts if a.user_id == "ana"}


def test_a_new_joiners_first_evening_agent_is_judged_by_the_teams_hours(
        event_lists: EventLists) -> None:
    """Issue 13: one active day says nothing of a person's own hours, but their team's
    do. A member one day old, whose team works days, leaves an agent running from 19:00:
    it is a runaway within the half hour its evidence takes, not hours later, once a
    second day of the person's own (the run's own hours among them) has closed."""
    team = []
    for member in range(6):
        team += event_lists.workdays(random.Random(member), 12, user=f"m{member}")
    joiner = event_lists.workdays(random.Random(1), 2, start=START + timedelta(days=9))
    start = joiner[-1].timestamp.replace(hour=19, minute=0)  # their second day's evening
    alerts = _alerts(event_lists, team + joiner + _agent(event_lists, start, hours=4))
    runaway = [a for a in alerts if a.user_id == "ana" and a.kind == "runaway_agent"]
    assert runaway and runaway[0].event_time - start <= timedelta(minutes=45)
    assert "team is seldom active" in runaway[0].explanation


def test_an_agent_whose_person_is_at_the_keyboard_is_no_runaway(
        event_lists: EventLists) -> None:
    """An agent left running has nobody at the keyboard. The same night agent, with its
    person asking something in their own chat client every ten minutes or so, is a
    person working late with an agent (issue 13: false runaways of people whose CLI or
    chat requests were interleaved with their agent's)."""
    agent = _agent(event_lists, NIGHT, hours=3)
    rng = random.Random(4)
    chat, at = [], NIGHT
    while at < NIGHT + timedelta(hours=3):
        at += timedelta(minutes=rng.uniform(6, 14))
        chat.append(event_lists.request(60_000 + len(chat), at, 3000, 600, client="chat",
                                        fingerprint=f"chat-{len(chat)}"))
    history = _history(event_lists)
    assert "runaway_agent" in _kinds(_alerts(event_lists, history + agent))
    together = sorted(agent + chat, key=lambda e: e.timestamp)
    assert "runaway_agent" not in _kinds(_alerts(event_lists, history + together))


def test_an_agent_started_shortly_before_the_working_day_is_an_early_start(
        event_lists: EventLists) -> None:
    """An agent left running was left by someone who went home: its run begins after
    their day. The person who works 09:00-17:00 and sets an agent to work at 06:30, in
    conversation after conversation until their day begins, started early (issue 13:
    agent sessions two hours before a person's first usual hour were false runaways).
    The same agent from 01:00 is a runaway."""
    morning = NIGHT.replace(hour=6, minute=30)
    early = _agent(event_lists, morning, hours=2.4, turns=30)
    assert "runaway_agent" not in _kinds(_alerts(event_lists, _history(event_lists) + early))
    night = _agent(event_lists, NIGHT, hours=2.4, turns=30)
    assert "runaway_agent" in _kinds(_alerts(event_lists, _history(event_lists) + night))


def test_an_early_start_on_a_new_agent_client_is_no_new_pattern(
        event_lists: EventLists) -> None:
    """An early start is not judged as a runaway, but it still holds back what it would
    explain, as a run into the night does: 45 minutes of an agent client this person
    never used, from 06:30, is them starting early with a new tool, not a stolen key."""
    early = _agent(event_lists, NIGHT.replace(hour=6, minute=30), hours=0.75, turns=30)
    assert _alerts(event_lists, _history(event_lists) + early) == []


@pytest.mark.parametrize(("client", "runaway"), [("Claude-Agent", True), ("chat", False)])
def test_agent_clients_are_matched_by_pattern(event_lists: EventLists, client: str,
                                              runaway: bool) -> None:
    night = [e.model_copy(update={"client": client}) for e in _agent(event_lists, NIGHT)]
    kinds = _kinds(_alerts(event_lists, _history(event_lists) + night))
    assert ("runaway_agent" in kinds) is runaway


def test_the_same_agent_during_working_hours_is_not_runaway(event_lists: EventLists) -> None:
    day = _agent(event_lists, MONDAY)
    assert "runaway_agent" not in _kinds(_alerts(event_lists, _history(event_lists) + day))


def _runaway_after(event_lists: EventLists, history_days: int
                   ) -> tuple[datetime, list[AnomalyEvent]]:
    """(start, runaway alerts) of an 8-hour night agent after ``history_days`` working
    days."""
    history = _history(event_lists, days=history_days)
    start = history[-1].timestamp.replace(hour=1, minute=0) + timedelta(days=1)
    alerts = _alerts(event_lists, history + _agent(event_lists, start, hours=8))
    return start, [a for a in alerts if a.kind == "runaway_agent"]


def _first_runaway_delay(event_lists: EventLists, history_days: int) -> timedelta | None:
    start, runaway = _runaway_after(event_lists, history_days)
    return runaway[0].event_time - start if runaway else None


def test_a_young_profile_needs_a_longer_run_before_a_runaway_alert(
        event_lists: EventLists) -> None:
    # One day says nothing of usual hours; after two, an hour never seen is off-hours,
    # but only weakly (about 1 in 3, and a fifth of that while the profile is young),
    # so it takes hours of requests, where a long history takes minutes.
    assert _first_runaway_delay(event_lists, history_days=1) is None
    young = _first_runaway_delay(event_lists, history_days=2)
    mature = _first_runaway_delay(event_lists, history_days=12)
    assert young is not None and mature is not None
    assert young > timedelta(hours=2) and mature < timedelta(minutes=30)


def test_one_late_evening_does_not_make_a_young_profiles_evenings_working_hours(
        event_lists: EventLists) -> None:
    """A young profile's working span holds 90% of the hours it was seen at: one
    question at 23:00 on one day would otherwise stretch its working day from 09:00 to
    midnight, and an agent left running at 19:00 would go unjudged for hours (issue 13:
    the long runaway delays were on young profiles)."""
    history = _history(event_lists, days=8)
    stray = history[10].model_copy(update={
        "timestamp": history[10].timestamp.replace(hour=23, minute=10),
        "event_id": "ana-late-question"})
    start = history[-1].timestamp.replace(hour=19, minute=0) + timedelta(days=1)
    alerts = _alerts(event_lists, sorted([*history, stray], key=lambda e: e.timestamp)
                     + _agent(event_lists, start, hours=3))
    runaway = [a for a in alerts if a.kind == "runaway_agent"]
    assert runaway and runaway[0].event_time - start <= timedelta(hours=1, minutes=30)


def test_an_hour_never_seen_is_explained_as_such_not_as_a_share(
        event_lists: EventLists) -> None:
    _, runaway = _runaway_after(event_lists, history_days=2)
    assert "at an hour not seen in this user's 2 active days" in runaway[0].explanation


# -- new pattern ----------------------------------------------------------------------

def _new_model_burst(event_lists: EventLists, start: datetime, count: int = 20,
                     session: str | None = None, gap_seconds: float = 60.0
                     ) -> list[TokenUsageEvent]:
    """``count`` requests about ``gap_seconds`` apart on a model and client this person
    never used."""
    rng = random.Random(8)
    events, at = [], start
    for i in range(count):
        events.append(event_lists.request(
            40_000 + i, at, int(3000 * rng.lognormvariate(0.0, 0.4)), 600,
            model="gpt-unfamiliar", client="python-requests", session=session,
            fingerprint=f"stranger-{i}"))
        at += timedelta(seconds=gap_seconds * rng.uniform(0.5, 1.5))
    return events


def test_a_night_burst_on_a_never_used_model_and_client_is_a_new_pattern(
        event_lists: EventLists) -> None:
    burst = _new_model_burst(event_lists, NIGHT)
    assert "new_pattern" in _kinds(_alerts(event_lists, _history(event_lists) + burst))


def test_a_stolen_key_sending_big_repeated_prompts_is_a_new_pattern_not_gaming(
        event_lists: EventLists) -> None:
    burst = [event.model_copy(update={"input_tokens": event.input_tokens * 6,
                                      "prompt_fingerprint": f"stranger-{i % 3}"})
             for i, event in enumerate(_new_model_burst(event_lists, NIGHT, count=40))]
    kinds = _kinds(_alerts(event_lists, _history(event_lists) + burst))
    assert "new_pattern" in kinds
    assert "gaming" not in kinds


def test_one_session_is_one_decision_not_a_burst_of_them(event_lists: EventLists) -> None:
    # The same 20 requests as one conversation: one use of a new tool, judged as such.
    one_session = _new_model_burst(event_lists, NIGHT, session="ana-tryout")
    assert "new_pattern" not in _kinds(_alerts(event_lists, _history(event_lists) + one_session))
    # A longer one still counts once per three requests, so a burst is not hidden in it:
    # 40 requests in 20 min, as a tool holding one session would send them.
    long_session = _new_model_burst(event_lists, NIGHT, count=40, session="ana-tryout",
                                    gap_seconds=30.0)
    assert "new_pattern" in _kinds(_alerts(event_lists, _history(event_lists) + long_session))


def _carried(burst: list[TokenUsageEvent], cached: bool) -> list[TokenUsageEvent]:
    """``burst``'s requests as the turns of one conversation without a session id: each
    re-sends the context so far (every earlier prompt and answer), read from the prompt
    cache (``cached``) or sent again whole."""
    turns, context = [], 0
    for event in burst:
        turns.append(event.model_copy(update={
            "input_tokens": context + event.input_tokens,
            "cache_read_tokens": context if cached else 0}))
        context += event.input_tokens + event.output_tokens
    return turns


@pytest.mark.parametrize("cached", [False, True])
def test_a_long_conversation_on_a_new_model_without_session_ids_is_one_decision(
        event_lists: EventLists, cached: bool) -> None:
    # The night burst that is a new pattern as 20 independent requests, sent instead as
    # one conversation carrying its context (no session id: inferred from its growth, or
    # read from the cache): one use of a new tool, as if its session were declared.
    burst = _new_model_burst(event_lists, NIGHT)
    assert "new_pattern" in _kinds(_alerts(event_lists, _history(event_lists) + burst))
    conversation = _carried(burst, cached)
    assert "new_pattern" not in _kinds(
        _alerts(event_lists, _history(event_lists) + conversation))


def test_a_new_model_during_working_hours_is_a_normal_switch(event_lists: EventLists) -> None:
    switch = _new_model_burst(event_lists, MONDAY)
    assert "new_pattern" not in _kinds(_alerts(event_lists, _history(event_lists) + switch))


def test_days_of_requests_in_minutes_on_a_never_used_model_are_new_at_any_hour(
        event_lists: EventLists) -> None:
    # Mid-morning, when this person works, their key sends 60 requests in 10 minutes on a
    # model and client they never used: no hour makes that their own pace.
    burst = _new_model_burst(event_lists, MONDAY, count=60, gap_seconds=10.0)
    alerts = [a for a in _alerts(event_lists, _history(event_lists) + burst)
              if a.kind == "new_pattern"]
    assert alerts, "a stranger's burst at a working hour went unnoticed"
    assert alerts[0].event_time - burst[0].timestamp <= timedelta(minutes=10)


def _team_and_newcomer(event_lists: EventLists, joined: datetime) -> list[TokenUsageEvent]:
    """Six members at work for two weeks (claude-sonnet-4-5 in an IDE), and zoe, at work
    from ``joined`` to Monday 16 November (about 8 requests an hour), using gpt-5 in the
    same IDE."""
    team = event_lists.team_days(members=6, days=12)
    zoe = [event.model_copy(update={"model": "gpt-5"}) for event in event_lists.workdays(
        random.Random(5), (MONDAY - joined).days + 1, start=joined, user="zoe",
        requests=(60, 70), first=50_000)]
    return team + zoe


def test_a_newcomers_evening_on_their_teams_model_is_not_a_stolen_key(
        event_lists: EventLists) -> None:
    # Three working days in, zoe works an evening hour she has not worked before, at her
    # usual pace, on the model the rest of her team uses: an evening at work is seldom,
    # not a stranger's burst, and the model is the team's.
    evening = datetime(2026, 11, 16, 19, tzinfo=UTC)
    burst = [event.model_copy(update={"model": "claude-sonnet-4-5", "client": "ide",
                                      "user_id": "zoe", "team": "core"})
             for event in _new_model_burst(event_lists, evening, count=12)]
    joined = datetime(2026, 11, 11, tzinfo=UTC)  # a Wednesday
    alerts = _alerts(event_lists, _team_and_newcomer(event_lists, joined) + burst)
    assert "new_pattern" not in _kinds([a for a in alerts if a.user_id == "zoe"])


def test_a_night_burst_on_what_nobody_in_the_team_uses_is_new_even_on_a_young_profile(
        event_lists: EventLists) -> None:
    # A day into her job, zoe's key sends 40 requests at 01:00 on a model and a client
    # nobody in her team has used: too young to know her own habits, not her team's.
    burst = [event.model_copy(update={"user_id": "zoe", "team": "core"})
             for event in _new_model_burst(event_lists, NIGHT, count=40, gap_seconds=30.0)]
    alerts = [a for a in _alerts(event_lists, _team_and_newcomer(event_lists, MONDAY) + burst)
              if a.kind == "new_pattern"]
    assert {a.user_id for a in alerts} == {"zoe"}
    assert "never used by this user before, nor by their team" in alerts[0].explanation


# -- spike: a conversation is one draw, not many -------------------------------------

def _busy_hour(event_lists: EventLists, one_conversation: bool) -> list[TokenUsageEvent]:
    """20 requests in 50 minutes, input growing 12% a turn from the usual 3,000 (~16x
    the usual hour in all): one conversation, or as many fresh sessions."""
    return [event_lists.request(
                5000 + turn, MONDAY + timedelta(seconds=150 * turn), int(3000 * 1.12**turn),
                session="long-chat" if one_conversation else f"fresh-{turn}",
                fingerprint=f"turn-{turn}")
            for turn in range(20)]


def test_one_long_conversation_is_not_a_spike(event_lists: EventLists) -> None:
    # Its requests grow together: their sizes are one draw of the user's, not 20.
    assert _alerts(event_lists, _history(event_lists) + _busy_hour(event_lists, True)) == []


def test_as_many_big_fresh_requests_in_an_hour_are_a_spike(event_lists: EventLists) -> None:
    alerts = _alerts(event_lists, _history(event_lists) + _busy_hour(event_lists, False))
    assert [(alert.kind, alert.feature) for alert in alerts][:1] == [
        ("spike", "tokens_per_hour")]


def _agent_hours(event_lists: EventLists, day: datetime, count: int, size: int,
                 fingerprints: int | None = None, first: int = 70_000
                 ) -> list[TokenUsageEvent]:
    """``count`` requests within an hour from ``day``, each about ``size`` input tokens and
    a fifth of that in output; their prompts from ``fingerprints`` distinct ones (None:
    all fresh)."""
    rng = random.Random(first)
    seconds = sorted(rng.uniform(0, 3300) for _ in range(count))
    return [event_lists.request(
        first + i, day + timedelta(seconds=seconds[i]),
        int(size * rng.lognormvariate(0.0, 0.3)), int(size / 5 * rng.lognormvariate(0.0, 0.3)),
        session=f"agent-{first}-{i // 4}",
        fingerprint=f"p-{rng.randrange(fingerprints)}" if fingerprints else f"f-{first + i}")
        for i in range(count)]


def test_an_hour_of_moderately_more_bigger_repeated_requests_is_a_spike(
        event_lists: EventLists) -> None:
    # 3.5 times the pace, requests four times the size (answers too: no padding), all
    # one prompt again: each alone is an ordinary busy hour, together they are not (14x
    # the usual hour).
    hour = _agent_hours(event_lists, MONDAY, count=14, size=12_000, fingerprints=1)
    alerts = _alerts(event_lists, _history(event_lists) + hour)
    assert ("spike", "tokens_per_hour") in {(a.kind, a.feature) for a in alerts}


def _conversation_hour(event_lists: EventLists, repeated: bool) -> list[TokenUsageEvent]:
    """One conversation of 14 requests within an hour from MONDAY, each about 9,000 input
    tokens and 1,800 output (three times the usual request, 3.5 times the usual pace);
    all one prompt, or each its own."""
    rng = random.Random(9)
    seconds = sorted(rng.uniform(0, 3300) for _ in range(14))
    return [event_lists.request(
        80_000 + i, MONDAY + timedelta(seconds=seconds[i]),
        int(9000 * rng.lognormvariate(0.0, 0.1)), int(1800 * rng.lognormvariate(0.0, 0.3)),
        session="one-conversation", fingerprint="again" if repeated else f"fresh-{i}")
        for i in range(14)]


def test_an_hour_mostly_repeating_one_prompt_adds_up_to_a_spike(
        event_lists: EventLists) -> None:
    # Busier and bigger requests alone are an ordinary busy hour; with every request one
    # prompt sent again (each repeat counts), the three together are rare.
    history = _history(event_lists)
    repeated = _alerts(event_lists, history + _conversation_hour(event_lists, True))
    assert ("spike", "tokens_per_hour") in {(a.kind, a.feature) for a in repeated}
    fresh = _alerts(event_lists, history + _conversation_hour(event_lists, False))
    assert "spike" not in _kinds(fresh)



def _one_conversation(event_lists: EventLists, count: int, size: int, growth: float = 0.0
                      ) -> list[TokenUsageEvent]:
    """One conversation of ``count`` fresh prompts within an hour from MONDAY, each
    about ``size`` input tokens (its context growing ``growth`` a turn), usual answers."""
    rng = random.Random(11)
    seconds = sorted(rng.uniform(0, 3300) for _ in range(count))
    return [event_lists.request(
        90_000 + i, MONDAY + timedelta(seconds=seconds[i]),
        int(size * (1 + growth) ** i * rng.lognormvariate(0.0, 0.1)),
        int(600 * rng.lognormvariate(0.0, 0.4)), session="one-conversation",
        fingerprint=f"question-{i}") for i in range(count)]


def test_an_agent_sessions_many_ordinary_turns_are_not_a_spike(
        event_lists: EventLists) -> None:
    # Twenty-four turns of one agent session in an hour, six times the usual pace, each
    # the usual size and growing a little: the session's length is one draw, not 24.
    hour = _one_conversation(event_lists, count=24, size=3000, growth=0.04)
    assert "spike" not in _kinds(_alerts(event_lists, _history(event_lists) + hour))

def _busy_agent_user(event_lists: EventLists) -> list[TokenUsageEvent]:
    """Twelve days of a busy person: hours at the keyboard of ~25 requests of ~3,600
    tokens, and every working day two hours of an agent's 30 turns re-sending a
    200,000-token context from the prompt cache. Their hours range a hundredfold: the
    mean hour is several times the typical one."""
    history = _history(event_lists, days=12) + event_lists.workdays(
        random.Random(5), 12, requests=(150, 170), first=200_000)
    for day in range(12):
        for hour in (11, 15):
            date = START.replace(hour=hour) + timedelta(days=day)
            if date.weekday() < 5:
                history += _cached(_agent_hours(event_lists, date, count=30, size=200_000,
                                                first=100_000 + 100 * day + hour), 0.9)
    return history


def test_a_spike_is_not_learned_while_it_runs_however_widely_the_users_hours_vary(
        event_lists: EventLists) -> None:
    # Twice the pace, fresh requests fifteen times the usual size, most one of two
    # prompts: ten times the typical hour, but about the mean of hours that range a
    # hundredfold. Learned request by request, the hour would become its own baseline
    # before it was big enough to be judged.
    hour = _agent_hours(event_lists, MONDAY, count=60, size=45_000, fingerprints=2)
    alerts = _alerts(event_lists, _busy_agent_user(event_lists) + hour)
    assert ("spike", "tokens_per_hour") in {(a.kind, a.feature) for a in alerts}


def test_a_request_mostly_read_from_the_prompt_cache_is_not_judged_alone(
        event_lists: EventLists) -> None:
    # An agent resuming a 200,000-token context from the cache: each request is 50 times
    # the usual size, but re-sends what the conversation already holds. Its hour is
    # judged whole; none of its requests is a spike of its own.
    agent = _cached(_agent_hours(event_lists, MONDAY, count=30, size=200_000), 0.9)
    alerts = _alerts(event_lists, _history(event_lists) + agent)
    assert ("spike", "tokens_per_request") not in {(a.kind, a.feature) for a in alerts}


def _context_reader(event_lists: EventLists) -> list[TokenUsageEvent]:
    """Twelve days of a person whose IDE carries a ~100,000-token context: four
    conversations a working day of 30 turns, each opening cold (nothing read from the
    cache), every later turn reading 99% of the one before from the prompt cache. Their
    usual request is under 3,000 tokens fresh, tens of thousands whole."""
    rng = random.Random(21)
    return [event for day in range(12) if (START + timedelta(days=day)).weekday() < 5
            for conversation in range(4)
            for event in _cached_conversation(
                event_lists, START + timedelta(days=day, minutes=30 + 120 * conversation),
                1_000_000 + 1000 * (10 * day + conversation),
                int(100_000 * rng.lognormvariate(0.0, 0.3)), turns=30, carried=0.99)]


def test_a_cold_start_of_a_long_context_is_judged_whole_not_a_spike(
        event_lists: EventLists) -> None:
    # The cache expired: a 200,000-token context is sent again whole, with an ordinary
    # answer. 70 times the user's usual fresh request, about their usual context: their
    # work, judged against their usual request counted whole.
    cold = event_lists.request(5, MONDAY, 200_000, 3000, session="cold", fingerprint="cold")
    alerts = _alerts(event_lists, _context_reader(event_lists) + [cold])
    assert "spike" not in _kinds(alerts)


def test_cold_million_token_requests_are_a_spike_for_a_user_reading_long_contexts(
        event_lists: EventLists) -> None:
    # Six fresh tasks of a million tokens each, long answers, five minutes apart: ten
    # times the user's usual context every time, an hour of fresh work far beyond theirs.
    burst = [event_lists.request(10 + i, MONDAY + timedelta(minutes=5 * i), 1_000_000,
                                 30_000, session=f"task-{i}", fingerprint=f"task-{i}")
             for i in range(6)]
    alerts = _alerts(event_lists, _context_reader(event_lists) + burst)
    assert "spike" in _kinds(alerts)


def test_a_cold_request_writing_far_more_than_usual_is_a_spike_for_a_context_reader(
        event_lists: EventLists) -> None:
    # A 300,000-token task answered in 150,000 tokens: an answer is never read from the
    # cache, so a request writing more than a usual whole one is fresh work, judged against
    # the user's usual fresh request, not their usual context.
    task = event_lists.request(5, MONDAY, 300_000, 150_000, session="task", fingerprint="task")
    alerts = _alerts(event_lists, _context_reader(event_lists) + [task])
    assert ("spike", "tokens_per_request") in {(a.kind, a.feature) for a in alerts}


# -- creep ----------------------------------------------------------------------------

def _creeping(workday: int) -> float:
    """Level 1 for 10 working days, then x1.08 more each working day."""
    return 1.0 if workday < 10 else 1.08 ** (workday - 9)


def test_daily_level_rising_8_percent_a_workday_is_creep_caught_before_it_doubles(
        event_lists: EventLists) -> None:
    events = event_lists.workdays(random.Random(3), 40, scale=_creeping)
    creep = [a for a in _alerts(event_lists, events) if a.kind == "creep"]
    assert creep
    workdays_of_rise = sum(1 for day in range(creep[0].event_time.toordinal()
                                              - events[0].timestamp.toordinal())
                           if (events[0].timestamp + timedelta(days=day)).weekday() < 5) - 10
    assert 1.08 ** workdays_of_rise < 2.0, f"caught after {workdays_of_rise} working days"


@pytest.mark.parametrize("seed", [4, 5])
def test_steady_days_with_daily_noise_are_not_creep(event_lists: EventLists,
                                                    seed: int) -> None:
    events = event_lists.workdays(random.Random(seed), 28)  # 20 working days
    assert "creep" not in _kinds(_alerts(event_lists, events))


def test_one_huge_day_is_not_creep(event_lists: EventLists) -> None:
    events = event_lists.workdays(random.Random(6), 28,
                                  scale=lambda workday: 20.0 if workday == 10 else 1.0)
    assert "creep" not in _kinds(_alerts(event_lists, events))


# -- determinism: two engines, and state stored after every event --------------------

def _mixed_stream(event_lists: EventLists) -> list[TokenUsageEvent]:
    """Three people of one team: one pads prompts, one runs a loop, one leaves an agent
    running overnight."""
    events = []
    for seed, user in enumerate(("ana", "bob", "cid")):
        events += _history(event_lists, seed=seed, user=user)
    events += _work_session(event_lists, 60, filler=12_000, user="ana")
    events += _loop(event_lists, regular=True, user="bob")
    events += _agent(event_lists, NIGHT, user="cid")
    return sorted(events, key=lambda e: e.timestamp)


def test_two_fresh_engines_give_the_same_alert_ids_and_scores(event_lists: EventLists) -> None:
    events = _mixed_stream(event_lists)
    first = event_lists.score_people(ScoringEngine(DetectorConfig()), events)
    second = event_lists.score_people(ScoringEngine(DetectorConfig()), events)
    assert [r.score for r in first] == [r.score for r in second]
    assert ([a.alert_id for r in first for a in r.alerts]
            == [a.alert_id for r in second for a in r.alerts])
    assert {"gaming", "scripted_loop", "runaway_agent"} <= {
        a.kind for r in first for a in r.alerts}


def test_storing_user_and_team_state_after_every_event_changes_no_alert(
        event_lists: EventLists) -> None:
    """The worker stores state per batch, replay never does: both must alert alike."""
    events = _mixed_stream(event_lists)
    never_stored = event_lists.score_people(ScoringEngine(DetectorConfig()), events)
    engine = ScoringEngine(DetectorConfig())
    users: dict[str, bytes] = {}
    teams: dict[str, bytes] = {}
    stored = []
    for event in events:
        assert event.team is not None
        user = (UserState.from_bytes(users[event.user_id]) if event.user_id in users
                else engine.new_state(event.user_id))
        team = (TeamState.from_bytes(teams[event.team]) if event.team in teams
                else engine.new_team_state(event.team))
        stored.append(engine.score_event(user, event, event.timestamp, team_state=team))
        users[event.user_id], teams[event.team] = user.to_bytes(), team.to_bytes()
    assert stored == never_stored
    assert sum(len(r.alerts) for r in stored) >= 3


def test_an_identity_that_runs_around_the_clock_stays_out_of_its_teams_hours(
        event_lists: EventLists) -> None:
    """Issue 13, item 3: a machine in a team is not one of its people; were its every
    hour the team's, a young member's night would pass for the team's working hours."""
    people = [e for member in range(3)
              for e in _history(event_lists, seed=member, days=19, user=f"m{member}")]
    machine = _round_the_clock(event_lists, days=19, start=START)
    engine, team = ScoringEngine(DetectorConfig()), TeamState(team="core")
    states: dict[str, UserState] = {}
    for event in sorted(people + machine, key=lambda e: e.timestamp):
        state = states.setdefault(event.user_id, engine.new_state(event.user_id))
        engine.score_event(state, event, event.timestamp, team)
    hours = team.working_hours()
    assert hours is not None and max(hours[h] for h in range(0, 6)) < 0.1, hours
