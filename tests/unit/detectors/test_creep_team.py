"""Creep against the team's median member: a team whose members' levels rise together is
not N creeps, however long its own shift takes to be sure; one member rising alone is."""

from __future__ import annotations

import pytest
from conftest import EventLists

from tokenradar.detectors import ScoringEngine
from tokenradar.detectors.team import MIN_RISE_MEMBERS, TeamState
from tokenradar.schemas import DetectorConfig


def _creeping_members(event_lists: EventLists, scale_of: float, members: int, seed: int
                      ) -> set[str]:
    """Members alerted as creep in a team whose every member rises ``scale_of`` a working
    day from working day 10."""
    events = event_lists.team_days(
        members, 40, scale=lambda member, workday: scale_of ** max(0, workday - 9), seed=seed)
    engine = ScoringEngine(DetectorConfig())
    return {alert.user_id for result in event_lists.score_people(engine, events)
            for alert in result.alerts if alert.kind == "creep"}


@pytest.mark.parametrize(("scale_of", "members"), [(1.08, 8), (1.05, 8), (1.04, 12)])
def test_a_team_creeping_together_is_no_members_creep(
        event_lists: EventLists, scale_of: float, members: int) -> None:
    # Judged alone, 3 to 8 of the members were alerted (the team's shift is reported
    # only at the ramp's 12th-16th working day).
    assert _creeping_members(event_lists, scale_of, members, seed=0) == set()


def test_the_median_member_of_the_last_day_with_enough_members_is_the_teams_rise() -> None:
    team = TeamState("core")
    assert team.members_rise() == []
    for rise in (0.1, 0.2, 0.3):  # too few for a median
        team.learn_member_rises(1, [rise, None, rise])
    assert team.members_rise() == []
    for rise in (0.0, 0.4):
        team.learn_member_rises(1, [rise, rise, rise])
    # The second level is known of too few members that day: the team says nothing of it.
    assert team.members_rise() == [0.2, 0.0, 0.2]
    team.learn_member_rises(2, [0.05, 0.05, 0.05])  # day 1 is over: its medians stand
    assert team.members_rise() == [0.2, 0.0, 0.2]
    for _ in range(MIN_RISE_MEMBERS):  # today's members are up more: the higher counts
        team.learn_member_rises(2, [0.3, -0.1, 0.3])
    assert team.members_rise() == [0.3, 0.0, 0.3]
    team.learn_member_rises(3, [0.0, 0.0, 0.0])
    assert team.members_rise() == [0.3, -0.1, 0.3]  # below 0 counts as 0 in creep
