"""Teams: a population shift is one alert for the team, not one per member; one member
alone is still that member's; team state survives its codec; joiners start from the
team's pooled baseline."""

from __future__ import annotations

import base64
import gzip
import json
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import EventLists

from tokenradar.detectors import ScoringEngine, UserState, records
from tokenradar.detectors.base import ClosedBucket, Finding
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.context import digest32
from tokenradar.detectors.state import Incident
from tokenradar.detectors.team import (
    CLIP,
    MAX_HELD_DAYS,
    MAX_TOOLS,
    MEAN_ERROR,
    MIN_MEMBER_SPREAD,
    ShiftDay,
    TeamDay,
    TeamState,
    is_working_day,
    tool_key,
    used_by_others,
)
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent
from tokenradar.schemas.config import PopulationShiftConfig

UPGRADE_FIXTURES = Path(__file__).parent / "fixtures" / "state_ae4055c"

MEMBER_KINDS = {"creep", "drift", "spike"}
"""What each member of a team that moves together must not be alerted for."""


def _ramp(member: int, workday: int) -> float:
    """10 working days steady, then up x2.5 over 4 working days, and staying there."""
    return 1.0 if workday < 10 else 2.5 ** (min(workday - 9, 4) / 4)


def _early_ramp(member: int, workday: int) -> float:
    """Only 7 working days steady, then up x2.5 over 4 working days."""
    return 1.0 if workday < 7 else 2.5 ** (min(workday - 6, 4) / 4)


def _creeper(member: int, workday: int) -> float:
    """Member m3 alone rises 8% a working day after 10; everyone else is steady."""
    return 1.08 ** (workday - 9) if member == 3 and workday >= 10 else 1.0


def _alerts(event_lists: EventLists, events: list[TokenUsageEvent]) -> list[AnomalyEvent]:
    engine = ScoringEngine(DetectorConfig())
    return [alert for result in event_lists.score_people(engine, events)
            for alert in result.alerts]


def test_a_team_ramping_up_together_is_one_population_shift_not_member_alerts(
        event_lists: EventLists) -> None:
    alerts = _alerts(event_lists, event_lists.team_days(8, 26, scale=_ramp))
    shifts = [a for a in alerts if a.kind == "population_shift"]
    assert [(a.user_id, a.team) for a in shifts] == [("team:core", "core")]
    assert "population" in shifts[0].explanation
    members_alerted = {a.user_id for a in alerts if a.kind in MEMBER_KINDS}
    assert len(members_alerted) <= 1, members_alerted


def test_a_team_of_five_ramping_up_together_is_a_population_shift(
        event_lists: EventLists) -> None:
    alerts = _alerts(event_lists, event_lists.team_days(5, 26, scale=_ramp))
    assert "population_shift" in {a.kind for a in alerts}


def test_a_team_ramping_after_a_week_is_reported_within_3_working_days_of_its_end(
        event_lists: EventLists) -> None:
    # Three working days seen of each member, and a prior for the team's spread: the team
    # needs no weeks of quiet days before its movement can count.
    events = event_lists.team_days(8, 26, scale=_early_ramp)
    shifts = [a for a in _alerts(event_lists, events) if a.kind == "population_shift"]
    assert shifts
    workdays = sorted({e.timestamp.date() for e in events if e.timestamp.weekday() < 5})
    assert workdays[7] <= shifts[0].event_time.date() <= workdays[10 + 3]


def test_one_member_creeping_in_a_steady_team_is_no_population_shift(
        event_lists: EventLists) -> None:
    alerts = _alerts(event_lists, event_lists.team_days(8, 40, scale=_creeper))
    assert "population_shift" not in {a.kind for a in alerts}


def test_one_member_creeping_in_a_steady_team_is_that_members_creep(
        event_lists: EventLists) -> None:
    alerts = _alerts(event_lists, event_lists.team_days(8, 40, scale=_creeper))
    assert {a.user_id for a in alerts if a.kind == "creep"} == {"m3"}


def _ramp_with_two_members_wild(member: int, workday: int) -> float:
    """The team of ``_ramp``; m0 and m1 also at eight times that on working days 11-13."""
    return _ramp(member, workday) * (8.0 if member in (0, 1) and 11 <= workday <= 13 else 1.0)


def test_members_own_incidents_during_a_shift_do_not_hide_it(
        event_lists: EventLists) -> None:
    # Their days are two of eight in the team's median, as anyone's would be: the rest
    # of the team still moves it.
    alerts = _alerts(event_lists, event_lists.team_days(8, 26, scale=_ramp_with_two_members_wild))
    assert "population_shift" in {a.kind for a in alerts}


def _three_members_incidents(member: int, workday: int) -> float:
    """Members m0, m1 and m2 use eight times their usual on working days 12 and 13."""
    return 8.0 if member in (0, 1, 2) and workday in (12, 13) else 1.0


def test_three_members_own_incidents_on_the_same_days_are_no_population_shift(
        event_lists: EventLists) -> None:
    alerts = _alerts(event_lists, event_lists.team_days(8, 26, scale=_three_members_incidents))
    assert {a.user_id for a in alerts if a.kind != "population_shift"} == {"m0", "m1", "m2"}
    assert "population_shift" not in {a.kind for a in alerts}


WORKDAYS = [day for day in range(20_400, 20_460) if is_working_day(day)]
"""Monday to Friday day numbers (20_400 is a Thursday)."""
QUIET_DAYS = 6
"""Working days before a team moves: its members' first is only noted, five are learned."""


def _member_day(day: int, member: int, requests: float, size: float,
                rng: random.Random) -> ClosedBucket:
    """Member ``member``'s working day: their own number of requests (from 20 to 130)
    times ``requests``, each of 2,000 tokens times ``size``, with a tenth of a decade's
    day-to-day noise; the more requests, the more active hours (20 an hour, 12 at most)."""
    noise = 10 ** rng.gauss(0.0, 0.1)
    count = round(20 * 1.3 ** member * requests * noise)
    return ClosedBucket(day, round(count * 2_000 * size), count, min(12, max(1, count // 20)))


def _team_days(scale: Callable[[int, int], tuple[float, float]], members: int = 8,
               days: int = 12, config: PopulationShiftConfig | None = None,
               team: TeamState | None = None) -> tuple[TeamState, list[tuple[int, Finding]]]:
    """A team's members' working days, member m's day d at ``scale(m, d)`` (requests, size);
    the team and its findings, by the working day they came on."""
    team, config = team or TeamState("core"), config or PopulationShiftConfig()
    rng, findings = random.Random(7), []
    for number, day in enumerate(WORKDAYS[:days + 1]):  # the last day's first member closes
        for member in range(members):
            finding = team.learn_member_day(f"m{member}",
                                            _member_day(day, member, *scale(member, number), rng),
                                            None, config)
            findings += [(number, finding)] if finding is not None else []
    return team, findings


def _all_up(requests: float, size: float = 1.0) -> Callable[[int, int], tuple[float, float]]:
    return lambda member, day: (requests, size) if day >= QUIET_DAYS else (1.0, 1.0)


def test_a_team_asking_twice_as_often_is_one_population_shift() -> None:
    # Its extra requests take more of its hours: the day's count still doubles.
    team, findings = _team_days(_all_up(2.0))
    assert len(findings) == 1
    assert QUIET_DAYS < findings[0][0] <= QUIET_DAYS + 4
    assert "their requests" in findings[0][1].explanation
    assert findings[0][1].observed == pytest.approx(2.0, abs=0.3)
    # Reported once: the new level is the members' usual now.
    doubled = math.log10(20 * 2.0)
    assert team.levels[digest32("m0")].requests == pytest.approx(doubled, abs=0.1)


def test_a_team_asking_for_more_at_a_time_is_a_population_shift() -> None:
    _, findings = _team_days(_all_up(1.0, size=1.8))
    assert findings


def test_a_day_on_which_a_few_members_agree_is_judged_by_the_teams_usual_spread() -> None:
    spread = EWStats(count=20, mean=0.3**2)
    mean, variance = TeamState._judge([0.2, 0.2, 0.2, 0.21, 0.2], spread)
    assert mean == pytest.approx(0.202)
    # its prior counts a little
    assert variance == pytest.approx(MEAN_ERROR**2 * 0.3**2 / 5, rel=0.1)
    # A day as wide as the team usually is counts its own spread.
    _, wide = TeamState._judge([-0.6, -0.2, 0.2, 0.6, 1.0], EWStats(count=20, mean=0.3**2))
    assert wide > variance


def test_one_wild_member_moves_the_days_typical_member_by_a_bounded_step() -> None:
    # Seven members at their usual, one at a hundred times it (an incident of their own):
    # clipped, it moves the team's day by at most CLIP spreads over the members' number.
    mean, _ = TeamState._judge([0.0] * 7 + [2.0], EWStats())
    assert 0.0 < mean <= CLIP * MIN_MEMBER_SPREAD / 8 + 1e-9


def test_a_day_is_judged_by_its_members_mean_not_only_its_middle_one() -> None:
    # Its middle member is at +0.3, but three of seven are lower, none far: all count.
    mean, _ = TeamState._judge([0.1, 0.15, 0.2, 0.3, 0.3, 0.35, 0.4], EWStats())
    assert mean == pytest.approx(1.8 / 7)


def test_working_days_are_pooled_by_their_members_not_counted_alike() -> None:
    # Twenty members up by 0.3 on Friday, then Monday's four at their usual: the twenty
    # member-days outweigh the four, as they would pooled one by one.
    friday, monday = (MEAN_ERROR**2 * 0.3**2 / members for members in (20, 4))
    team = TeamState("core", shift_days=[ShiftDay(0.3, friday, 0.3, friday, 0.0),
                                         ShiftDay(0.0, monday, 0.0, monday, 0.0)])
    z, level, days = team._surest_rise(min_days=2)
    assert days == 2
    assert level == pytest.approx(0.3 * 20 / 24)
    assert z == pytest.approx(level / math.sqrt(MEAN_ERROR**2 * 0.3**2 / 24))


def test_a_thin_day_while_the_team_rises_is_judged_with_the_next_one() -> None:
    never = PopulationShiftConfig(min_z=1000.0)
    team, _ = _team_days(_all_up(2.0), days=QUIET_DAYS + 2, config=never)
    team.advance(WORKDAYS[QUIET_DAYS + 3], 13, never)  # its last full day judged
    held, levels = team.held_days, {k: v.requests for k, v in team.levels.items()}
    assert held > 0
    rng, day = random.Random(3), WORKDAYS[QUIET_DAYS + 3]
    for member in range(2):  # two of eight members only: too few to judge
        team.learn_member_day(f"m{member}", _member_day(day, member, 2.0, 1.0, rng), None,
                              never)
    team.advance(day + 1, 13, never)
    assert team.held_days == held + 1  # the rise goes on...
    assert {k: v.requests for k, v in team.levels.items()} == levels  # ...nothing learned
    assert len(team.day_levels) == 2  # ...and the two wait for the next day's judgement


def test_a_teams_day_is_judged_by_mid_morning_of_the_next() -> None:
    # Most of a working team's days have closed by ten: each hour waited is an hour later.
    team, _ = _team_days(lambda member, day: (1.0, 1.0))
    last = team.day.number
    team.advance(last + 1, 9, PopulationShiftConfig())
    assert team.day.number == last
    team.advance(last + 1, 10, PopulationShiftConfig())
    assert team.day.number == last + 1
    assert team.day_levels == []


def test_a_team_whose_summed_tokens_alone_rose_is_not_shifting() -> None:
    # One member's creep moves a small team's sum a quarter; its typical member stays.
    team, _ = _team_days(lambda member, day: (1.0, 1.0))
    team.recent = EWStats(count=3, mean=math.log10(1.3))
    assert not team.shifting(time=0.0)


def test_a_team_of_machines_changing_their_jobs_is_no_population_shift() -> None:
    team, config = TeamState("automation"), PopulationShiftConfig()
    findings = []
    for number, day in enumerate(WORKDAYS[:13]):
        for member in range(6):  # around the clock, the same requests, 3x the tokens later
            tokens = 1_000_000 * (3 if number >= QUIET_DAYS else 1) + member
            finding = team.learn_member_day(f"job-{member}", ClosedBucket(day, tokens, 900, 24),
                                            None, config)
            findings += [finding] if finding is not None else []
    assert findings == []
    assert team.levels == {}


def test_a_young_team_whose_first_days_were_partial_is_no_population_shift() -> None:
    # The team began listening late in the day: each member's first working day is a
    # tenth of their usual one, and every day after it is steady. That day is no usual:
    # learned, it held their levels low, and the team rose by it (a false shift on day 9).
    team, findings = _team_days(lambda member, day: (0.1 if day == 0 else 1.0, 1.0))
    assert findings == []
    assert not team.rising()  # nor does it rise (members' creep would wait for it)


def test_a_members_first_working_day_is_noted_not_learned() -> None:
    team, _ = _team_days(lambda member, day: (0.25 if day == 0 else 1.0, 1.0), days=1)
    assert team.levels[digest32("m0")].days == 0
    team, _ = _team_days(lambda member, day: (0.25 if day == 0 else 1.0, 1.0), days=2)
    assert team.levels[digest32("m0")].requests == pytest.approx(math.log10(20), abs=0.15)


def test_a_small_rise_is_no_population_shift() -> None:
    _, findings = _team_days(_all_up(1.15))
    assert findings == []


def test_one_heavy_members_agent_is_no_population_shift() -> None:
    _, findings = _team_days(lambda member, day: (8.0 if member == 0 and day >= QUIET_DAYS
                                                  else 1.0, 1.0))
    assert findings == []


def test_a_weekend_is_not_judged() -> None:
    team = TeamState("core")
    config = PopulationShiftConfig()
    rng = random.Random(1)
    saturday = next(day for day in range(20_400, 20_410) if not is_working_day(day))
    for member in range(8):
        team.learn_member_day(f"m{member}", _member_day(saturday, member, 3.0, 1.0, rng),
                              None, config)
    assert team.day_levels == []


def test_a_team_too_few_to_judge_learns_its_members_and_reports_nothing() -> None:
    team, findings = _team_days(_all_up(2.0), members=3)
    assert findings == []
    assert team.levels[digest32("m0")].days > QUIET_DAYS


def test_a_rising_team_does_not_learn_its_rise_as_its_members_usual() -> None:
    never = PopulationShiftConfig(min_z=1000.0)
    team, _ = _team_days(_all_up(2.0), days=QUIET_DAYS + 3, config=never)
    quiet, _ = _team_days(_all_up(2.0), days=QUIET_DAYS, config=never)
    assert team.held_days == 3
    assert team.levels[digest32("m0")] == quiet.levels[digest32("m0")]
    assert team.shifting(time=0.0)
    assert team.rising()
    assert math.log10(1.5) < team.rising_by() <= math.log10(2.5)


def test_a_team_alerted_as_a_shift_and_still_moving_is_shifting_not_rising() -> None:
    # Its shift was reported: what its members do with it is learned, creep need not wait.
    team, _ = _team_days(lambda member, day: (1.0, 1.0))
    team.recent = EWStats(count=3, mean=0.08)
    team.incident = Incident("a1", until=100.0)
    assert team.shifting(time=50.0)
    assert not team.rising()
    assert team.rising_by() == 0.0


def test_a_rise_that_lasts_without_being_reported_becomes_the_usual() -> None:
    never = PopulationShiftConfig(min_z=1000.0)
    team, _ = _team_days(_all_up(2.0), days=QUIET_DAYS + MAX_HELD_DAYS + 3, config=never)
    assert team.levels[digest32("m0")].requests > math.log10(20 * 1.5)
    assert not team.shifting(time=0.0)


def test_a_steady_team_or_one_heavy_mover_is_not_shifting() -> None:
    steady, _ = _team_days(lambda member, day: (1.0, 1.0))
    one, _ = _team_days(lambda member, day: (8.0 if member == 0 else 1.0, 1.0))
    assert not steady.shifting(time=0.0)
    assert not one.shifting(time=0.0)


def test_a_team_alerted_as_a_shift_is_shifting_while_it_moves_within_the_cooldown() -> None:
    team, _ = _team_days(lambda member, day: (1.0, 1.0))
    team.recent = EWStats(count=3, mean=0.08)  # moving, by less than a quarter
    team.incident = Incident("a1", until=100.0)
    assert team.shifting(time=50.0)
    assert not team.shifting(time=150.0)


def test_team_state_round_trips_and_scoring_continues_identically(
        event_lists: EventLists) -> None:
    events = sorted(event_lists.team_days(8, 26, scale=_ramp), key=lambda e: e.timestamp)
    never_encoded = event_lists.score_people(ScoringEngine(DetectorConfig()), events)
    assert any(a.kind == "population_shift" for r in never_encoded for a in r.alerts)

    engine = ScoringEngine(DetectorConfig())
    users: dict[str, UserState] = {}
    team = engine.new_team_state("core")
    results = []
    for number, event in enumerate(events):
        if number == len(events) // 2:  # a worker restarts: everything comes back from bytes
            raw = team.to_bytes()
            team = TeamState.from_bytes(raw)
            assert team.to_bytes() == raw
            users = {u: UserState.from_bytes(s.to_bytes()) for u, s in users.items()}
        user = users.setdefault(event.user_id, engine.new_state(event.user_id))
        results.append(engine.score_event(user, event, event.timestamp, team_state=team))
    assert results == never_encoded


def _team_stored_by_ae4055c() -> dict[str, Any]:
    """A team's state as release ae4055c stored it (JSON), from the upgrade fixture."""
    with gzip.open(UPGRADE_FIXTURES / "identity.json.gz", "rt") as fixture:
        return dict(json.loads(base64.b64decode(json.load(fixture)["stored"]["team"])))


@pytest.mark.parametrize("stored", [
    [20_400, 5_000.0, 4_000.0, 3],  # before the biggest mover was kept
    [20_400, 5_000.0, 4_000.0, 3, 2_500.0, 1_000.0],  # with it, before members' ratios
])
def test_a_team_day_stored_by_an_earlier_release_reads(stored: list[float]) -> None:
    document = _team_stored_by_ae4055c()
    document["day"] = stored
    del document["ratios"]
    restored = TeamState.from_bytes(json.dumps(document).encode())
    assert restored.day == TeamDay(20_400, 5_000.0, 4_000.0, 3)


def test_team_state_of_another_schema_version_is_refused() -> None:
    with pytest.raises(ValueError, match="team state schema version 99 is not"):
        TeamState.from_bytes(records.encode(99, TeamState(team="core")))
    document = _team_stored_by_ae4055c() | {"v": 99}
    with pytest.raises(ValueError, match="codec version 99"):
        TeamState.from_bytes(json.dumps(document).encode())


JOINER_DAY = datetime(2026, 11, 9, tzinfo=UTC)
"""The Monday a new member joins, after a week of the team's usage."""


def _joiner_first_score(event_lists: EventLists, first_tokens: int | None,
                        team: str | None = "core") -> tuple[float, list[str]]:
    """A team's week, then a joiner's first day; (score, alert kinds) of its first request,
    which is ``first_tokens`` big (or an ordinary day's first when None)."""
    day = event_lists.workdays(random.Random(9), 1, start=JOINER_DAY, user="newbie",
                               team=team, first=1)
    if first_tokens is not None:
        first = event_lists.request(0, JOINER_DAY + timedelta(hours=8, minutes=55),
                                    first_tokens, 2000, user="newbie", team=team)
        day = [first, *day]
    events = event_lists.team_days(4, 7) + day
    results = event_lists.score_people(ScoringEngine(DetectorConfig()), events)
    ordered = sorted(events, key=lambda e: e.timestamp)
    joined = [r for e, r in zip(ordered, results, strict=True) if e.user_id == "newbie"]
    return joined[0].score, [a.kind for a in joined[0].alerts]


def test_a_joiners_giant_first_request_is_judged_by_the_teams_pooled_baseline(
        event_lists: EventLists) -> None:
    score, kinds = _joiner_first_score(event_lists, 1_000_000)
    assert kinds == ["spike"]
    assert score >= DetectorConfig().scoring.alert_threshold
    # Without a team there is no baseline yet, so nothing to judge it by.
    assert _joiner_first_score(event_lists, 1_000_000, team=None) == (0.0, [])


def test_a_joiners_ordinary_first_day_raises_no_alert(event_lists: EventLists) -> None:
    day = event_lists.workdays(random.Random(9), 1, start=JOINER_DAY, user="newbie")
    events = event_lists.team_days(4, 7) + day
    results = event_lists.score_people(ScoringEngine(DetectorConfig()), events)
    ordered = sorted(events, key=lambda e: e.timestamp)
    assert not [a for e, r in zip(ordered, results, strict=True) for a in r.alerts
                if e.user_id == "newbie"]


KAFKA_DEFAULT_REQUEST_BYTES = 1_048_576


def test_a_team_key_shared_by_thousands_keeps_a_record_kafka_can_take() -> None:
    # Names of the longest allowed (256 four-byte characters) and 60,000 members' days in
    # one team-day: the record must stay writable, or the worker stops on it.
    team, config = TeamState("ø" * 256), PopulationShiftConfig()
    for member in range(60_000):
        team.learn_member_day(f"{member:06d}" + "😀" * 250,
                              ClosedBucket(WORKDAYS[0], 1_000 + member, 10, 2), 1_000.0, config)
    assert team.day.members == 60_000
    assert len(team.to_bytes()) < KAFKA_DEFAULT_REQUEST_BYTES * 0.7


def test_a_team_remembers_who_uses_its_models_and_forgets_the_rarest_when_full() -> None:
    team = TeamState(team="core")
    for member in (1, 2, 3, 4):
        team.learn_tool(member, tool_key("model", "gpt-5"))
    team.learn_tool(1, tool_key("client", "sdk"))
    team.learn_tool(2, tool_key("client", "sdk"))
    assert team.tools[tool_key("model", "gpt-5")] == [1, 2, 3]  # enough to say "others"
    assert used_by_others(team.tools, 1, tool_key("model", "gpt-5"))
    # One other member is not the team: a stolen key's tool does not become the team's.
    assert not used_by_others(team.tools, 1, tool_key("client", "sdk"))
    team.learn_tool(4, tool_key("client", "cli"))
    for number in range(MAX_TOOLS):
        team.learn_tool(2, tool_key("model", f"m{number}"))
    assert len(team.tools) == MAX_TOOLS
    assert {tool_key("model", "gpt-5"), tool_key("client", "sdk")} <= set(team.tools)
    assert tool_key("client", "cli") not in team.tools


