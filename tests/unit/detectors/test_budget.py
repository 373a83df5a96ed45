"""Budgets: the forecast's maths, budget_burn's incidents, and the backtest's month."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tokenradar.detectors import ScoringEngine, TeamState, UserState
from tokenradar.detectors.budget import (
    DAY_SECONDS,
    BudgetState,
    day_number,
    is_weekend,
    month_bounds,
)
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent
from tokenradar.schemas.money import BudgetsConfig

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)  # November 2026 starts on a Sunday


def _day(when: date) -> int:
    return day_number(datetime(when.year, when.month, when.day, tzinfo=UTC).timestamp())


def _spend(state: BudgetState, first: date, days: int, weekday: float, weekend: float) -> None:
    for offset in range(days):
        day = _day(first) + offset
        state.add(day * DAY_SECONDS + 12 * 3600, weekend if is_weekend(day) else weekday)


def test_month_bounds_cover_the_calendar_month() -> None:
    start, end = month_bounds(_day(date(2026, 2, 14)))
    assert (start, end) == (_day(date(2026, 2, 1)), _day(date(2026, 2, 28)))
    assert month_bounds(_day(date(2026, 12, 31)))[1] == _day(date(2026, 12, 31))


def test_pace_keeps_weekdays_and_weekends_apart() -> None:
    state = BudgetState()
    _spend(state, date(2026, 11, 2), 14, weekday=100.0, weekend=10.0)
    assert state.pace(_day(date(2026, 11, 16)), weekdays=5, weekend_days=4) == (100.0, 10.0)


def test_pace_follows_the_last_weekdays() -> None:
    state = BudgetState()
    _spend(state, date(2026, 11, 2), 7, weekday=100.0, weekend=0.0)   # Mon 2 - Sun 8
    _spend(state, date(2026, 11, 9), 3, weekday=400.0, weekend=0.0)   # Mon 9 - Wed 11
    weekday, _ = state.pace(_day(date(2026, 11, 12)), weekdays=5, weekend_days=4) or (0, 0)
    assert weekday == pytest.approx((400.0 * 3 + 100.0 * 2) / 5)


def test_no_forecast_before_a_weekend_day_is_known() -> None:
    state = BudgetState()
    _spend(state, date(2026, 11, 2), 5, weekday=100.0, weekend=0.0)   # Mon-Fri only
    assert state.forecast(_day(date(2026, 11, 7)), 1000.0, weekdays=5, weekend_days=4) is None
    state.add(_day(date(2026, 11, 7)) * DAY_SECONDS, 0.0)              # Saturday, nothing spent
    assert state.forecast(_day(date(2026, 11, 8)), 1000.0, weekdays=5, weekend_days=4)


def test_projection_adds_the_pace_of_each_day_left() -> None:
    state = BudgetState()
    _spend(state, date(2026, 11, 2), 14, weekday=100.0, weekend=10.0)  # to Sun 15
    today = _day(date(2026, 11, 16))
    state.add(today * DAY_SECONDS + 3600, 30.0)                        # Monday so far
    forecast = state.forecast(today, budget=10_000.0, weekdays=5, weekend_days=4)
    assert forecast is not None
    # Spent: 10 weekdays + 4 weekend days + 30 today; left: 70 today, 10 weekdays, 4 weekend
    assert forecast.spent == pytest.approx(1000.0 + 40.0 + 30.0)
    assert forecast.projected == pytest.approx(1070.0 + 70.0 + 1000.0 + 40.0)
    assert forecast.exhaustion_day is None


def test_exhaustion_is_the_day_the_projection_reaches_the_budget() -> None:
    state = BudgetState()
    _spend(state, date(2026, 11, 2), 14, weekday=100.0, weekend=10.0)
    today = _day(date(2026, 11, 16))
    forecast = state.forecast(today, budget=1_500.0, weekdays=5, weekend_days=4)
    assert forecast is not None
    # 1,040 by Sunday 15; 100 a weekday: 1,140 Mon ... 1,440 Thu, 1,540 Fri 20.
    assert forecast.exhaustion_date == date(2026, 11, 20)
    assert forecast.working_days_left == 4


def test_a_spent_budget_is_exhausted_on_the_day_it_was_passed() -> None:
    state = BudgetState()
    _spend(state, date(2026, 11, 2), 14, weekday=100.0, weekend=10.0)
    forecast = state.forecast(_day(date(2026, 11, 16)), 450.0, weekdays=5, weekend_days=4)
    assert forecast is not None and forecast.exhaustion_date == date(2026, 11, 6)


def test_a_new_month_starts_from_nothing_spent_at_the_last_pace() -> None:
    state = BudgetState()
    _spend(state, date(2026, 11, 2), 29, weekday=100.0, weekend=10.0)  # to Mon 30
    december = _day(date(2026, 12, 1))
    state.add(december * DAY_SECONDS, 5.0)
    forecast = state.forecast(december, 1_000_000.0, weekdays=5, weekend_days=4)
    assert forecast is not None and forecast.spent == 5.0
    assert forecast.weekday_pace == 100.0


def test_budget_state_round_trips_through_the_team_codec() -> None:
    team = TeamState(team="apps", budget=BudgetState())
    _spend(team.budget or BudgetState(), date(2026, 11, 2), 45, weekday=1.5, weekend=0.25)
    decoded = TeamState.from_bytes(team.to_bytes())
    assert decoded.budget == team.budget
    assert len(decoded.budget.spend if decoded.budget else []) == 40


# The engine's budget_burn, on a small team of one whose spend doubles mid-month.

def _month(weekday_requests: int, doubled_from: int | None = None, team: str = "apps",
           user: str = "ana") -> list[TokenUsageEvent]:
    events = []
    for day in range(29):  # Mon Nov 2 - Mon Nov 30
        start = MONDAY + timedelta(days=day)
        weekend = start.weekday() >= 5
        requests = 2 if weekend else weekday_requests
        if doubled_from is not None and start.day >= doubled_from:
            requests *= 3
        for i in range(requests):
            events.append(TokenUsageEvent(
                event_id=f"{user}-{day}-{i}", user_id=user, team=team, model="m",
                timestamp=start + timedelta(hours=9, minutes=2 * i), input_tokens=1000,
                output_tokens=100, cost_usd=1.0))
    return events


def _burns(config: DetectorConfig, events: list[TokenUsageEvent]) -> list[AnomalyEvent]:
    engine = ScoringEngine(config)
    users: dict[str, UserState] = {}
    teams: dict[str, TeamState] = {}
    alerts = []
    for event in events:
        state = users.setdefault(event.user_id, engine.new_state(event.user_id))
        team = teams.setdefault(event.team or "", engine.new_team_state(event.team or ""))
        alerts += [alert for alert in engine.score_event(state, event, event.timestamp, team).alerts
                   if alert.kind == "budget_burn"]
    return alerts


def _budgets(**teams: float) -> DetectorConfig:
    return DetectorConfig(budgets=BudgetsConfig(teams=teams))


def test_no_budget_burn_without_budgets_or_within_one() -> None:
    assert _burns(DetectorConfig(), _month(40, doubled_from=10)) == []
    # 21 weekdays of $40 and 8 weekend days of $2 = $856.
    assert _burns(_budgets(apps=1_000.0), _month(40)) == []


def test_budget_burn_is_raised_once_then_updated_under_its_id() -> None:
    alerts = _burns(_budgets(apps=1_300.0), _month(40, doubled_from=12))
    assert alerts, "a tripled pace from the 12th runs out before the month ends"
    first = alerts[0]
    assert first.user_id == "team:apps" and first.team == "apps"
    assert {alert.alert_id for alert in alerts} == {first.alert_id}
    assert first.exhaustion_date is not None and first.exhaustion_date.month == 11
    dates = [alert.exhaustion_date for alert in alerts]
    assert len(set(zip(dates, (a.severity for a in alerts), strict=True))) == len(alerts)
    assert first.observed_cost == first.observed and first.expected_cost == 1_300.0
    assert "run out on" in first.explanation and "$1,300" in first.explanation


def test_a_user_budget_alerts_for_the_user() -> None:
    config = DetectorConfig(budgets=BudgetsConfig(users={"ana": 1_300.0}))
    alerts = _burns(config, _month(40, doubled_from=12))
    assert alerts and {alert.user_id for alert in alerts} == {"ana"}


def test_the_backtest_month_warns_five_working_days_ahead_and_spares_steady_teams() -> None:
    from tokenradar.lab.budget_backtest import run_backtest

    results = {result.team: result for result in run_backtest(seed=11)}
    accelerating = results["accelerating-apps"]
    assert accelerating.exhausted is not None
    assert (accelerating.working_days_ahead or 0) >= 5
    for team in ("steady-platform", "steady-research"):
        assert results[team].alerts == [] and results[team].exhausted is None
