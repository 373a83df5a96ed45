"""Creep, day by day: a steady rise of the hourly level or of output per request is found
within days; busy and quiet days, one wild day, a step up and a whole team moving are
not creep; the slot survives the state codec."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tokenradar.detectors.base import ClosedBucket, Finding, Observation
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.creep import CreepDetector, CreepSlot
from tokenradar.schemas import TokenUsageEvent
from tokenradar.schemas.config import CreepConfig

START = datetime(2026, 3, 2, tzinfo=UTC)
HOURS = range(9, 15)
"""Six active hours a day, two requests in each."""
BASE = 20_000.0
"""Tokens per active hour of the steady user."""
ALERT = 0.6


def _observation(at: datetime, tokens: int, closed_day: ClosedBucket | None,
                 team_shift: float, output_tokens: int = 0, team_shifting: bool = False,
                 day: tuple[int, int] = (0, 0)) -> Observation:
    event = TokenUsageEvent(event_id=f"e-{at.timestamp():.0f}", timestamp=at, user_id="ana",
                            team="core", model="m", input_tokens=tokens - output_tokens,
                            output_tokens=output_tokens)
    return Observation(
        event=event, time=at.timestamp(), tokens=tokens, gap=None, hour_tokens=tokens,
        hour_requests=1, window_requests=1, closed_hour=None, closed_window=None,
        closed_day=closed_day, repeat_share=0.0, repeated=False, session_requests=1,
        session_first_input=tokens, session_most_input=tokens,
        usual_hourly_requests=EWStats(), usual_activity=1.0,
        profile_days=30, usual_activity_nearby=1.0, day_tokens=day[0],
        day_active_hours=day[1], team_shift=team_shift, team_shifting=team_shifting)


def _days(levels: list[float], team_shift: float = 0.0,
          answers: list[float] | None = None, team_shifting: bool = False
          ) -> Iterator[tuple[int, Observation]]:
    """(day, observation) of a user whose day ``d`` has ``levels[d]`` tokens per active
    hour, of which each request's output is ``answers[d]`` times a log-normal noise of
    0.25 (log10) when given; each day closes at the next day's first request."""
    rng = random.Random(0)
    closed = None
    for day, level in enumerate(levels):
        tokens = round(level / 2)
        for hours_so_far, hour in enumerate(HOURS, start=1):
            for requests_in_hour, minute in enumerate((10, 40), start=1):
                at = START + timedelta(days=day, hours=hour, minutes=minute)
                output = 0 if answers is None else round(answers[day] * 10 ** rng.gauss(0, 0.25))
                so_far = tokens * (2 * (hours_so_far - 1) + requests_in_hour), hours_so_far
                yield day, _observation(at, tokens, closed, team_shift, min(output, tokens),
                                        team_shifting, so_far)
                closed = None
        closed = ClosedBucket(0.0, tokens * 2 * len(HOURS), 2 * len(HOURS), len(HOURS))


def _noisy(days: int, spread: float, seed: int,
           trend: Callable[[int], float] = lambda day: 1.0) -> list[float]:
    """Levels with day-to-day noise of ``spread`` (log10), times ``trend(day)``."""
    rng = random.Random(seed)
    return [BASE * trend(day) * 10 ** rng.gauss(0.0, spread) for day in range(days)]


def _rising(day: int) -> float:
    """Steady for 10 days, then 6% more every day."""
    return 1.06 ** max(0, day - 9)


def _findings(levels: list[float], team_shift: float = 0.0,
              answers: list[float] | None = None, team_shifting: bool = False
              ) -> list[tuple[int, Observation, Finding]]:
    detector = CreepDetector(CreepConfig())
    slot = detector.new_slot()
    return [(day, observation, finding)
            for day, observation in _days(levels, team_shift, answers, team_shifting)
            if (finding := detector.observe(slot, observation)) is not None]


def _first_alert(levels: list[float], answers: list[float] | None = None
                 ) -> tuple[int, Observation, Finding] | None:
    return next(((day, obs, finding) for day, obs, finding in _findings(levels, 0.0, answers)
                 if finding.score >= ALERT), None)


@pytest.mark.parametrize("seed", range(6))
def test_steady_user_with_busy_and_quiet_days_is_not_creep(seed: int) -> None:
    levels = _noisy(40, spread=0.15, seed=seed)
    assert max((f.score for _, _, f in _findings(levels)), default=0.0) < ALERT


@pytest.mark.parametrize("seed", range(4))
def test_a_rise_of_6_percent_a_day_is_found_by_when_it_doubles(seed: int) -> None:
    first = _first_alert(_noisy(40, spread=0.03, seed=seed, trend=_rising))
    assert first is not None
    days_of_rise = first[0] - 9
    assert days_of_rise <= 12, f"found after {days_of_rise} days of rise (1.06^12 = 2.01)"


ANSWER = 400.0
"""Output tokens per request of the steady user."""


@pytest.mark.parametrize("seed", range(4))
def test_answers_growing_6_percent_a_day_are_found_before_they_grow_80_percent(seed: int) -> None:
    # The hourly level is as noisy as a real one's, so only the answers can tell.
    levels = _noisy(40, spread=0.25, seed=seed)
    answers = [ANSWER * _rising(day) for day in range(40)]
    first = _first_alert(levels, answers)
    assert first is not None
    day, _, finding = first
    assert finding.feature == "output_tokens_per_request_by_day"
    assert "output tokens per request" in finding.explanation
    assert 1.06 ** (day - 9) < 1.8, f"found after {day - 9} days of rise"


@pytest.mark.parametrize("seed", range(4))
def test_steady_answers_on_busy_and_quiet_days_are_not_creep(seed: int) -> None:
    levels = _noisy(40, spread=0.25, seed=seed)
    answers = [ANSWER] * 40
    assert max((f.score for _, _, f in _findings(levels, 0.0, answers)), default=0.0) < ALERT


@pytest.mark.parametrize("step", [3.0, 5.0, 10.0, 30.0])
def test_a_level_that_steps_up_and_stays_is_not_creep(step: float) -> None:
    # Learned bit by bit as jumps, then held days that no longer rise: a drift's.
    levels = _noisy(60, spread=0.05, seed=2, trend=lambda day: 1.0 if day < 15 else step)
    assert max((f.score for _, _, f in _findings(levels)), default=0.0) < ALERT


@pytest.mark.parametrize("step", [2.5, 4.0, 10.0])
def test_answers_that_step_up_and_stay_are_not_creep(step: float) -> None:
    # A model that answers at more length.
    levels = _noisy(40, spread=0.1, seed=4)
    answers = [ANSWER * (step if day >= 15 else 1.0) for day in range(40)]
    assert max((f.score for _, _, f in _findings(levels, 0.0, answers)), default=0.0) < ALERT


def test_the_running_day_is_scored_before_it_closes() -> None:
    first = _first_alert(_noisy(40, spread=0.03, seed=0, trend=_rising))
    assert first is not None
    assert first[1].closed_day is None, "found only when the day closed"


def test_a_rise_while_the_team_shifts_is_learned_not_creep() -> None:
    levels = _noisy(40, spread=0.05, seed=0, trend=_rising)
    assert _findings(levels, team_shift=0.3, team_shifting=True) == []


def test_a_rise_while_the_team_moves_a_little_now_and_then_is_still_creep() -> None:
    # A team of a dozen is 1.15x its members' usual one day in ten: those days must not
    # learn away what the member's days have shown so far (here three in the rise's
    # first nine days; learned, they put off the alert by five days).
    levels = _noisy(40, spread=0.25, seed=0)
    answers = [ANSWER * _rising(day) for day in range(40)]
    detector = CreepDetector(CreepConfig())
    slot = detector.new_slot()
    first = None
    for day, observation in _days(levels, answers=answers):
        if day in (12, 15, 18):
            observation = replace(observation, team_shift=0.07)
        finding = detector.observe(slot, observation)
        if first is None and finding is not None and finding.score >= ALERT:
            first = day
    assert first is not None and 1.06 ** (first - 9) < 1.8


def test_one_wild_day_is_not_creep() -> None:
    levels = _noisy(40, spread=0.1, seed=1)
    levels[15] *= 30.0
    assert max((f.score for _, _, f in _findings(levels)), default=0.0) < ALERT


def test_a_lasting_jump_becomes_the_new_reference() -> None:
    detector = CreepDetector(CreepConfig())
    slot = detector.new_slot()
    levels = _noisy(60, spread=0.05, seed=2, trend=lambda day: 1.0 if day < 15 else 30.0)
    for _, observation in _days(levels):
        detector.observe(slot, observation)
    assert slot.tracks[0].reference.mean == pytest.approx(math.log10(30 * BASE), abs=0.1)


def test_slot_round_trips_through_its_stored_form_and_scores_on_identically() -> None:
    detector = CreepDetector(CreepConfig())
    levels = _noisy(40, spread=0.05, seed=3, trend=_rising)
    observations = [observation for _, observation in _days(levels)]
    slot = detector.new_slot()
    for observation in observations[:220]:  # mid-rise, in the middle of a day
        detector.observe(slot, observation)
    assert slot.tracks[0].held.count > 0 and slot.day_requests
    # A user state holds an unread slot as plain values.
    restored = detector.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(slot)))
    assert isinstance(restored, CreepSlot)
    assert restored == slot
    for observation in observations[220:]:
        assert detector.observe(restored, observation) == detector.observe(slot, observation)


def _paced_days(days: int, seed: int, pace: Callable[[int], float]
                ) -> Iterator[tuple[int, Observation]]:
    """(day, observation) of a user whose day ``d`` has about ``pace(d)`` requests in
    each of six active hours (a Poisson count), each answered with about ANSWER output
    tokens, and whose input piles up by a factor drawn for the whole day (0.25 log10,
    as conversations that carry their context do): tokens per hour are noisy, answers
    are steady."""
    rng = random.Random(seed)
    closed = None
    for day in range(days):
        context = 4_000 * 10 ** rng.gauss(0.0, 0.25)
        day_tokens = day_requests = 0
        for hours_so_far, hour in enumerate(HOURS, start=1):
            count = max(1, _poisson(rng, pace(day)))
            for index in range(count):
                at = START + timedelta(days=day, hours=hour, seconds=index * 3600 // count)
                output = round(ANSWER * 10 ** rng.gauss(0.0, 0.1))
                tokens = round(context * 10 ** rng.gauss(0.0, 0.3)) + output
                day_tokens += tokens
                day_requests += 1
                yield day, _observation(at, tokens, closed, 0.0, output,
                                        day=(day_tokens, hours_so_far))
                closed = None
        closed = ClosedBucket(0.0, day_tokens, day_requests, len(HOURS))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count (Knuth's method: the means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _paced_findings(seed: int, pace: Callable[[int], float]) -> list[tuple[int, Finding]]:
    detector = CreepDetector(CreepConfig())
    slot = detector.new_slot()
    return [(day, finding) for day, observation in _paced_days(40, seed, pace)
            if (finding := detector.observe(slot, observation)) is not None]


@pytest.mark.parametrize("seed", range(4))
def test_a_pace_rising_7_percent_a_day_is_found(seed: int) -> None:
    # More requests an hour, each the usual size: answers per request stay put and tokens
    # per hour follow the day's context, so only answers per hour (pace x size) can tell.
    # About 36 requests a day vary by 0.07 log10 from day to day: a ramp of 0.03 a day
    # needs 9-10 days of it against 10 earlier days for a one-in-a-million test.
    found = [(day, f) for day, f in _paced_findings(seed, lambda day: 6 * 1.07 ** max(0, day - 9))
             if f.score >= ALERT]
    assert found, "a pace creep was never found"
    day, finding = found[0]
    assert finding.feature == "output_tokens_per_active_hour_by_day"
    assert day - 9 <= 15, f"found after {day - 9} days of rise"


@pytest.mark.parametrize("seed", range(6))
def test_a_steady_pace_with_noisy_context_is_not_creep(seed: int) -> None:
    assert max((f.score for _, f in _paced_findings(seed, lambda day: 6.0)), default=0.0) < ALERT


def test_a_slot_stored_before_answers_per_hour_gains_that_aspect() -> None:
    detector = CreepDetector(CreepConfig())
    slot = detector.new_slot()
    observations = [observation for _, observation in _paced_days(12, 0, lambda day: 6.0)]
    for observation in observations[:100]:
        detector.observe(slot, observation)
    stored = msgspec.msgpack.decode(msgspec.msgpack.encode(slot))
    del stored[0][2]  # as stored with two aspects (tokens and answers per request)
    restored = detector.restore(stored)
    assert isinstance(restored, CreepSlot) and len(restored.tracks) == 2
    for observation in observations[100:]:
        detector.observe(restored, observation)
    assert len(restored.tracks) == 3 and restored.tracks[2].reference.count > 0


def _first_alert_with_team(levels: list[float], team_rise: Callable[[int], float],
                           members_rise: bool = False) -> int | None:
    """The day of the first alert of a user whose team rises toward a shift not reported
    yet by ``team_rise(day)`` (log10; 0: it does not shift); with ``members_rise``, its
    median member's levels rise as much."""
    detector = CreepDetector(CreepConfig())
    slot = detector.new_slot()
    for day, observation in _days(levels):
        if (rise := team_rise(day)) > 0.0:
            observation = replace(observation, team_shifting=True, team_rise=rise,
                                  team_levels_rise=(rise,) * 3 if members_rise else ())
        finding = detector.observe(slot, observation)
        if finding is not None and finding.score >= ALERT:
            return day
    return None


@pytest.mark.parametrize("seed", range(4))
def test_a_member_rising_with_their_rising_team_is_the_teams_shift_not_creep(seed: int) -> None:
    levels = _noisy(40, spread=0.03, seed=seed, trend=_rising)
    assert _first_alert_with_team(levels, lambda day: math.log10(_rising(day)),
                                  members_rise=True) is None


@pytest.mark.parametrize("seed", range(4))
def test_a_team_flagged_rising_whose_members_levels_stay_does_not_hold_back_a_creep(
        seed: int) -> None:
    # The team's summed days say it rises 1.25x (a noisy team) while its median member's
    # levels stay: the member's closed days are judged as if alone, found at most a day
    # later (the running day waits out the flag); waiting out the flag, found on day
    # 23-25, and learned with the team's rise, on day 29-31.
    levels = _noisy(40, spread=0.03, seed=seed, trend=_rising)
    alone = _first_alert_with_team(levels, lambda d: 0.0)
    day = _first_alert_with_team(levels, lambda d: math.log10(1.25) if 16 <= d < 23 else 0.0)
    assert alone is not None and day is not None and day <= alone + 1, (alone, day)


@pytest.mark.parametrize("seed", range(4))
def test_a_member_rising_beyond_their_rising_team_is_still_creep(seed: int) -> None:
    # A week into the member's rise, their team's typical member is 1.25x their usual for
    # a week (say, several members' incidents at once). The member, 1.4x by then, rises
    # beyond the team: their days wait, and their rise is found within two days of the
    # team's end (day 23). Learned away with the team's days, it was found on day 29-31.
    levels = _noisy(40, spread=0.03, seed=seed, trend=_rising)
    day = _first_alert_with_team(levels, lambda d: math.log10(1.25) if 16 <= d < 23 else 0.0,
                                 members_rise=True)
    assert day is not None and day <= 25, f"found on day {day}"


def _first_alert_with_members(levels: list[float], answers: list[float],
                              members_rise: Callable[[int], float]) -> int | None:
    """The day of the first alert of a user whose team's median member is up by
    ``members_rise(day)`` (log10) over their own reference in every level, while the team
    raises no flag of its own (``team_shifting`` stays False)."""
    detector = CreepDetector(CreepConfig())
    slot = detector.new_slot()
    for day, observation in _days(levels, answers=answers):
        rise = members_rise(day)
        observation = replace(observation, team_levels_rise=(rise,) * len(slot.tracks))
        finding = detector.observe(slot, observation)
        if finding is not None and finding.score >= ALERT:
            return day
    return None


def _answers_rising(day: int) -> float:
    """Answers of 300 tokens for 10 days, then 6% longer every day."""
    return 300.0 * _rising(day)


@pytest.mark.parametrize("seed", range(4))
def test_a_member_whose_answers_rise_with_the_teams_median_member_is_not_creep(
        seed: int) -> None:
    # A new model answers at more length for the whole team: every member's own steady
    # answers rise together (the team's flag, judged on its days, comes days later).
    levels = _noisy(40, spread=0.03, seed=seed)
    answers = [_answers_rising(day) for day in range(40)]
    alone = _first_alert_with_members(levels, answers, lambda day: 0.0)
    assert alone is not None, "the member's rise alone must be creep"
    assert _first_alert_with_members(
        levels, answers, lambda day: math.log10(_rising(day))) is None


@pytest.mark.parametrize("seed", range(4))
def test_a_member_rising_well_beyond_the_teams_median_member_is_still_creep(seed: int) -> None:
    # The team's median member is up a few percent (its usual wobble): the member's rise
    # is found as it would be alone, at most a day later.
    levels = _noisy(40, spread=0.03, seed=seed)
    answers = [_answers_rising(day) for day in range(40)]
    alone = _first_alert_with_members(levels, answers, lambda day: 0.0)
    day = _first_alert_with_members(levels, answers, lambda day: math.log10(1.04))
    assert alone is not None and day is not None and day <= alone + 1, (alone, day)


def test_rises_are_known_only_from_a_reference_of_a_few_days() -> None:
    detector = CreepDetector(CreepConfig())
    slot = detector.new_slot()
    assert slot.rises() == [None, None, None]
    for _, observation in _days([BASE] * 8, answers=[300.0] * 8):
        detector.observe(slot, observation)
    rises = slot.rises()
    assert all(rise is not None and abs(rise) < 0.1 for rise in rises), rises
