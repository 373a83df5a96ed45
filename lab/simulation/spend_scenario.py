"""A month of spend for budget backtests: teams that keep to their budget, and one whose
spend accelerates mid-month (an agent rollout: more requests, larger ones).

Each team's budget is its own usual month (the same people, seed and habits without
the acceleration) with ``headroom`` on top, as a finance team would set it. People
work weekdays, 09:00-18:00 UTC, and now and then a little at weekends.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from tokenradar.lab.simulation.usage import RequestLog

HOUR = 3600.0
DAY = 86_400.0
MONTH_START = datetime(2026, 11, 1, tzinfo=UTC)
MONTH_DAYS = 30


@dataclass(frozen=True, slots=True)
class SpendTeam:
    name: str
    people: int = 6
    requests_per_weekday: int = 40
    accelerate_on: int | None = None
    """Day of the month (1-based) the team's spend starts to accelerate; None: never."""
    acceleration: float = 2.0
    """Spend per day once accelerated, over the usual (requests x size)."""
    ramp_days: int = 3
    """Days the acceleration takes to reach its full factor."""
    headroom: float = 1.3
    """The budget over the team's usual month."""


DAY_TO_DAY = 0.2
"""Spread (log-normal sigma) of a team's day: releases, meetings, busy weeks."""
DEFAULT_TEAMS = (
    SpendTeam("steady-platform"),
    SpendTeam("steady-research", people=4, requests_per_weekday=60, headroom=1.15),
    SpendTeam("accelerating-apps", accelerate_on=12, acceleration=2.0),
)


def _factor(team: SpendTeam, day_of_month: int) -> float:
    if team.accelerate_on is None or day_of_month < team.accelerate_on:
        return 1.0
    progress = min(1.0, (day_of_month - team.accelerate_on + 1) / team.ramp_days)
    return 1.0 + (team.acceleration - 1.0) * progress


def team_events(team: SpendTeam, seed: int, accelerate: bool = True
                ) -> Iterator[tuple[int, dict[str, object]]]:
    """``(epoch ms, event)`` of the team's month, in no particular order."""
    start = MONTH_START.timestamp()
    days = random.Random(f"{seed}/{team.name}")
    busy = [days.lognormvariate(0.0, DAY_TO_DAY) for _ in range(MONTH_DAYS)]
    for person in range(team.people):
        user_id = f"{team.name}-{person:02d}"
        rng = random.Random(f"{seed}/{user_id}")
        log = RequestLog(seed, user_id, user_id, team.name)
        habit = rng.uniform(0.6, 1.5)
        for day in range(MONTH_DAYS):
            day_start = start + day * DAY
            weekend = (MONTH_START.weekday() + day) % 7 >= 5
            if weekend and rng.random() > 0.25:
                continue
            factor = _factor(team, day + 1) if accelerate else 1.0
            # Half the acceleration is more requests, half larger ones.
            requests = team.requests_per_weekday * habit * (0.3 if weekend else 1.0)
            requests *= factor ** 0.5 * busy[day] * rng.uniform(0.6, 1.4)
            session = log.new_session()
            for _ in range(round(requests)):
                at = day_start + 9 * HOUR + rng.random() * 9 * HOUR
                size = factor ** 0.5 * rng.lognormvariate(0.0, 0.5)
                input_tokens = round(20_000 * size)  # coding assistants: large contexts,
                yield log.request(at, "claude-sonnet-4-5", input_tokens, round(1000 * size),
                                  round(input_tokens * 0.6), "ide", session, None)  # cached


@dataclass(frozen=True, slots=True)
class SpendScenario:
    events: list[dict[str, object]]
    """Time-ordered events of every team."""
    budgets: dict[str, float]
    """Team -> monthly budget, USD."""


def spend_scenario(seed: int = 11, teams: tuple[SpendTeam, ...] = DEFAULT_TEAMS
                   ) -> SpendScenario:
    """The teams' month, and budgets of their ``headroom`` times their usual month."""
    timed = [item for team in teams for item in team_events(team, seed)]
    timed.sort(key=lambda item: (item[0], str(item[1]["event_id"])))
    budgets = {}
    for team in teams:
        usual = sum(float(event["cost_usd"])  # type: ignore[arg-type]
                    for _, event in team_events(team, seed, accelerate=False))
        budgets[team.name] = round(usual * team.headroom, 2)
    return SpendScenario([event for _, event in timed], budgets)
