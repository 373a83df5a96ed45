"""Budget backtest: does ``budget_burn`` warn early enough, and how far off is the forecast?

The month of :mod:`tokenradar.lab.simulation.spend_scenario` goes through the scoring
core as ``replay`` sends it (:func:`tokenradar.replay.score_stream`). For each budgeted
team it reports the first ``budget_burn`` alert, the day the spend really passed the
budget, the working days between them, and the error of the forecast: the projected
exhaustion date at the first alert against the real one, and the projected month-end
spend of every day's forecast (made when the day before closed) against the real total.

Run it: ``python -m tokenradar.lab.budget_backtest [--seed N]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from tokenradar.detectors import ScoringEngine, TeamState
from tokenradar.detectors.budget import BudgetForecast, day_date, day_number, is_weekend
from tokenradar.lab.simulation.spend_scenario import DEFAULT_TEAMS, SpendTeam, spend_scenario
from tokenradar.replay import score_stream
from tokenradar.schemas import AnomalyEvent, AnomalyKind, DetectorConfig, TokenUsageEvent
from tokenradar.schemas.money import BudgetsConfig


@dataclass
class TeamBacktest:
    team: str
    budget: float
    spend: float = 0.0
    """The month's real spend."""
    exhausted: int | None = None
    """Day the real spend passed the budget."""
    alerts: list[AnomalyEvent] = field(default_factory=list)
    """Its budget_burn messages: the first, then each update."""
    forecasts: dict[int, BudgetForecast] = field(default_factory=dict)
    """Day -> the forecast made at the day's first request."""

    @property
    def first_alert_day(self) -> int | None:
        return day_number(self.alerts[0].event_time.timestamp()) if self.alerts else None

    @property
    def working_days_ahead(self) -> int | None:
        """Weekdays after the first alert's day, up to and including the real exhaustion."""
        first = self.first_alert_day
        if first is None or self.exhausted is None:
            return None
        return sum(not is_weekend(d) for d in range(first + 1, self.exhausted + 1))

    @property
    def projected_at_first_alert(self) -> date | None:
        return self.alerts[0].exhaustion_date if self.alerts else None

    def month_end_errors(self) -> list[float]:
        """Each day's projected month-end spend over the real one, minus 1."""
        return [forecast.projected / self.spend - 1.0
                for _, forecast in sorted(self.forecasts.items())]

    def describe(self) -> str:
        errors = self.month_end_errors()
        mape = statistics.fmean(abs(e) for e in errors) if errors else float("nan")
        head = (f"{self.team}: budget ${self.budget:,.0f}, month ${self.spend:,.0f} "
                f"({self.spend / self.budget:.0%}); month-end forecast error "
                f"{mape:.1%} mean absolute over {len(errors)} daily forecasts")
        if not self.alerts:
            return f"{head}; no budget_burn"
        first = day_date(self.first_alert_day or 0)
        real = "never" if self.exhausted is None else f"{day_date(self.exhausted):%a %b %d}"
        projected = self.projected_at_first_alert
        miss = ("" if projected is None or self.exhausted is None
                else f", {(projected - day_date(self.exhausted)).days:+d} days off")
        at_alert = self.alerts[0].observed / self.spend - 1.0
        since = [error for day, error in zip(sorted(self.forecasts), errors, strict=True)
                 if day >= (self.first_alert_day or 0)]
        return (f"{head}; budget_burn first on {first:%a %b %d} ({len(self.alerts) - 1} "
                f"updates), projecting {projected:%a %b %d}{miss} and a month of "
                f"${self.alerts[0].observed:,.0f} ({at_alert:+.0%}; "
                f"{statistics.fmean(abs(e) for e in since):.1%} mean absolute from then on); "
                f"spend passed the budget {real}: {self.working_days_ahead} working days "
                "after the alert")


def run_backtest(seed: int = 11, pace_weekdays: int = 5,
                 teams: tuple[SpendTeam, ...] = DEFAULT_TEAMS) -> list[TeamBacktest]:
    scenario = spend_scenario(seed, teams)
    config = DetectorConfig(budgets=BudgetsConfig(teams=scenario.budgets,
                                                 pace_weekdays=pace_weekdays))
    engine = ScoringEngine(config)
    results = {team: TeamBacktest(team, budget) for team, budget in scenario.budgets.items()}
    teams: dict[str, TeamState] = {}
    daily: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    events = [TokenUsageEvent.model_validate(event) for event in scenario.events]
    for scored in score_stream(((event, "") for event in events), engine, teams):
        event = scored.event
        team = event.team or ""
        day = day_number(event.epoch_seconds)
        daily[team][day] += engine.cost_of(event)
        result = results[team]
        budget = teams[team].budget
        if budget is not None and day not in result.forecasts:
            forecast = budget.forecast(day, result.budget, pace_weekdays,
                                       config.budgets.pace_weekend_days)
            if forecast is not None:
                result.forecasts[day] = forecast
        result.alerts += [alert for alert in scored.result.alerts
                          if alert.kind == AnomalyKind.BUDGET_BURN]
    for team, result in results.items():
        total = 0.0
        for day in sorted(daily[team]):
            total += daily[team][day]
            if result.exhausted is None and total >= result.budget:
                result.exhausted = day
        result.spend = total
    return list(results.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--pace-weekdays", type=int, default=5)
    args = parser.parse_args(argv)
    for result in run_backtest(args.seed, args.pace_weekdays):
        print(result.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
