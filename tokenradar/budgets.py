"""``tokenradar budgets``: each budget's spend, forecast and date, from an events file.

It reads the events through the scoring core, as ``replay`` does (the same engine, the
same reorder buffers, the same :class:`~tokenradar.detectors.budget.BudgetState`), so
its figures are those the worker's ``budget_burn`` alerts are made of; and unlike the
alerts, it shows the budgets that are on track too. The standing is as of the newest
event in the file. Events are read with replay's input limits, against the clock
(an event dated ahead of now is skipped, as the worker would dead-letter it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenradar.detectors import ScoringEngine, TeamState
from tokenradar.detectors.budget import BudgetForecast, BudgetState, day_date, day_number, money
from tokenradar.replay import ReplaySummary, score_stream, valid_events
from tokenradar.schemas import DetectorConfig
from tokenradar.schemas.events import DEFAULT_LIMITS


@dataclass(frozen=True, slots=True)
class BudgetStanding:
    owner: str
    """``team:<team>`` or a user id."""
    budget: float
    forecast: BudgetForecast | None
    """None: too few complete days of spend to forecast."""

    def describe(self) -> str:
        forecast = self.forecast
        head = f"{self.owner:<28} budget {money(self.budget):>9}"
        if forecast is None:
            return f"{head}  too few days of spend to forecast yet"
        spent = f"spent {money(forecast.spent):>9} ({forecast.spent / self.budget:4.0%})"
        pace = (f"pace {money(forecast.weekday_pace)}/weekday "
                f"{money(forecast.weekend_pace)}/weekend day")
        ending = f"month-end {money(forecast.projected):>9}"
        when = forecast.exhaustion_date
        if when is None:
            status = "within budget"
        elif forecast.spent >= self.budget:
            status = f"OVER since {when:%a %b %d}"
        else:
            status = f"runs out {when:%a %b %d}"
        return f"{head}  {spent}  {ending}  {status}  ({pace})"


def budget_standings(events: Path, config: DetectorConfig) -> tuple[str, list[BudgetStanding]]:
    """(as of when, each budget's standing) after scoring every event of the file."""
    engine = ScoringEngine(config)
    teams: dict[str, TeamState] = {}
    users: dict[str, BudgetState] = {}
    newest = None
    with open(events, "rb") as source:
        arrivals = valid_events(source, ReplaySummary(), DEFAULT_LIMITS, time.time())
        for scored in score_stream(arrivals, engine, teams):
            seconds = scored.event.epoch_seconds
            newest = seconds if newest is None else max(newest, seconds)
            if scored.state.budget is not None:
                users[scored.state.user_id] = scored.state.budget
    if newest is None:
        return "no events", []
    today = day_number(newest)
    budgets = config.budgets

    def standings() -> Iterator[BudgetStanding]:
        for team, budget in sorted(budgets.teams.items()):
            state = teams[team].budget if team in teams else None
            yield BudgetStanding(f"team:{team}", budget, _forecast(state, today, budget, config))
        for user, budget in sorted(budgets.users.items()):
            yield BudgetStanding(user, budget, _forecast(users.get(user), today, budget, config))

    return f"{day_date(today):%a %Y-%m-%d} (the newest event's UTC day)", list(standings())


def _forecast(state: BudgetState | None, today: int, budget: float,
              config: DetectorConfig) -> BudgetForecast | None:
    if state is None:
        return None
    return state.forecast(today, budget, config.budgets.pace_weekdays,
                          config.budgets.pace_weekend_days)
