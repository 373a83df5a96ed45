"""Population shift: a whole team moving together, reported once for the team.

The team's numbers (its open day, its members' usual working days, its last judged
working days) live in the
:class:`~tokenradar.detectors.team.TeamState`, which judges the team's day when it
closes (see :mod:`tokenradar.detectors.team`); this detector feeds it each member's
closed day and the passing of the team's day, and turns a shift into a finding.
"""

from __future__ import annotations

from tokenradar.detectors.base import Finding, Observation, TeamDetector
from tokenradar.detectors.team import TeamState
from tokenradar.schemas.config import PopulationShiftConfig
from tokenradar.schemas.kinds import POPULATION_SHIFT


class PopulationShiftDetector(TeamDetector):
    """Finds a team whose members' working days stay above their own usual levels together.

    The team's movement is learned even when the alert is switched off: members'
    creep and drift expect it (``Observation.team_shift``) instead of alerting on each.

    Parameters
    ----------
    config
        Members, ratio and days; see :class:`tokenradar.schemas.config.PopulationShiftConfig`.
    """

    declaration = POPULATION_SHIFT
    config: PopulationShiftConfig

    def __init__(self, config: PopulationShiftConfig) -> None:
        self.config = config

    def observe_member(self, team: TeamState, observation: Observation, local_day: int,
                       local_hour: int) -> Finding | None:
        finding = None
        day = observation.closed_day
        if day is not None:
            finding = team.learn_member_day(observation.event.user_id, day,
                                            observation.usual_day_tokens, self.config)
        return finding or team.advance(local_day, local_hour, self.config)
