"""Teams: a population shift is one alert for the team, not one per member; one member
alone is still that member's; team state survives its codec; joiners start from the
team's pooled baseline."""

from __future__ import annotations

import base64
import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import EventLists

from tokenradar.detectors import ScoringEngine, UserState, records
from tokenradar.detectors.base import Finding
from tokenradar.detectors.state import Incident
from tokenradar.detectors.team import MAX_TOOLS, TeamDay, TeamState, tool_key, used_by_others
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


def test_a_team_ramping_after_a_week_is_reported_while_it_ramps(
        event_lists: EventLists) -> None:
    # Two quiet days seen, and a prior for the rest: the team needs no week of quiet
    # days before its movement can count.
    events = event_lists.team_days(8, 26, scale=_early_ramp)
    shifts = [a for a in _alerts(event_lists, events) if a.kind == "population_shift"]
    assert shifts
    ramp_end = sorted({e.timestamp.date() for e in events if e.timestamp.weekday() < 5})[10]
    assert shifts[0].event_time.date() <= ramp_end


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


def _small_team_findings(heaviest: float, others: float) -> list[Finding]:
    """Four members a day: four quiet days, then three with the heaviest (ten times the
    others' usage) at ``heaviest`` times their usual and the other three at ``others``."""
    team, config = TeamState("core"), PopulationShiftConfig()
    findings = []
    for day in range(8):
        for member, usual in enumerate((100_000, 10_000, 10_000, 10_000)):
            times = 1.0 if day < 4 else heaviest if member == 0 else others
            finding = team.learn_member_day(day, usual * times, usual, config)
            findings += [finding] if finding is not None else []
    return findings


def test_one_heavy_members_weekend_agent_is_no_population_shift_of_a_small_team() -> None:
    assert _small_team_findings(heaviest=3.0, others=1.0) == []


def test_a_small_team_all_up_together_is_a_population_shift() -> None:
    findings = _small_team_findings(heaviest=2.0, others=2.0)
    assert findings and findings[-1].score >= DetectorConfig().scoring.alert_threshold


def _small_team(heaviest: float, others: float) -> TeamState:
    """The team of ``_small_team_findings``, after its eight days."""
    team, config = TeamState("core"), PopulationShiftConfig()
    for day in range(9):  # the ninth day's first member closes the eighth
        for member, usual in enumerate((100_000, 10_000, 10_000, 10_000)):
            times = 1.0 if day < 4 else heaviest if member == 0 else others
            team.learn_member_day(day, usual * times, usual, config)
    return team


def test_one_heavy_member_up_a_third_moves_a_small_team_but_is_no_shift() -> None:
    # Its members' spikes are judged against the movement; their creep is not learned.
    team = _small_team(heaviest=1.3, others=1.0)
    assert team.expected_shift() > 0
    assert not team.shifting(time=0.0)


def test_a_small_team_all_up_together_is_shifting() -> None:
    assert _small_team(heaviest=2.0, others=2.0).shifting(time=0.0)


def test_a_team_all_up_by_a_third_is_shifting_before_its_up_days() -> None:
    team = _small_team(heaviest=1.3, others=1.3)
    assert team.up_days == 0  # below population_shift.min_ratio (1.4)
    assert team.shifting(time=0.0)


def test_a_team_alerted_as_a_shift_is_shifting_while_it_moves_within_the_cooldown() -> None:
    team = _small_team(heaviest=1.3, others=1.0)
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
def test_a_team_day_stored_by_an_earlier_release_reads_with_no_member_ratios(
        stored: list[float]) -> None:
    document = _team_stored_by_ae4055c()
    document["day"] = stored
    del document["ratios"]
    restored = TeamState.from_bytes(json.dumps(document).encode())
    assert restored.day == TeamDay(20_400, 5_000.0, 4_000.0, 3)
    assert restored.member_ratios == []


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
        team.see_member(f"{member:06d}" + "😀" * 250)
        team.learn_member_day(1, 1_000.0 + member, 1_000.0, config)
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
