"""Budgets: month-to-date spend, a forecast at the current pace, and ``budget_burn``.

A team's (or a user's) spend is kept day by day (UTC days of event time) for the last
:data:`HISTORY_DAYS`; the pace is the mean spend of its last few complete weekdays and,
apart, of its last few weekend days, since most teams spend little at weekends (a
forecast waits until both are known). The month's projection is what is spent so far,
plus what the pace adds to the rest of today and to each day left in the month; the
day the cumulative spend reaches the budget is its projected exhaustion. When that falls
within the month, one ``budget_burn`` incident is opened for the month, and re-published
under its id each time the projected date moves (or the spend passes the budget); its
score says how soon: ``1 - days left / 35`` (two weeks 0.6, five days 0.86, today 1.0).

Evaluated when a day closes (the first event of the next day) and when the spend
passes the budget: a forecast from whole days, the same in the worker and ``replay``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from tokenradar.detectors.base import Finding
from tokenradar.detectors.records import Record
from tokenradar.schemas.money import BudgetsConfig

DAY_SECONDS = 86_400
HISTORY_DAYS = 40
"""A whole month, and the pace's window before its first day."""
URGENCY_DAYS = 35.0
"""Days left at which a budget's score would reach 0: two weeks score 0.6."""
EPOCH = date(1970, 1, 1)


def day_number(time: float) -> int:
    """UTC day of an epoch time, counted from 1970-01-01."""
    return int(time // DAY_SECONDS)


def day_date(day: int) -> date:
    return EPOCH + timedelta(days=day)


def is_weekend(day: int) -> bool:
    return day_date(day).weekday() >= 5


def month_bounds(day: int) -> tuple[int, int]:
    """First and last day number of the UTC month ``day`` is in."""
    first = day_date(day).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    start = (first - EPOCH).days
    return start, (following - EPOCH).days - 1


@dataclass(frozen=True, slots=True)
class BudgetForecast:
    """Where a budget stands on ``day``, at the current pace."""

    day: int
    spent: float
    """Month to date, the running day included."""
    projected: float
    """Month-end total at the current pace."""
    budget: float
    weekday_pace: float
    weekend_pace: float
    exhaustion_day: int | None
    """Day the spend reaches the budget (already did, or projected to); None: not this month."""

    @property
    def days_left(self) -> int | None:
        return None if self.exhaustion_day is None else max(0, self.exhaustion_day - self.day)

    @property
    def working_days_left(self) -> int | None:
        """Weekdays after today, up to and including the exhaustion day."""
        if self.exhaustion_day is None:
            return None
        return sum(not is_weekend(d) for d in range(self.day + 1, self.exhaustion_day + 1))

    @property
    def exhaustion_date(self) -> date | None:
        return None if self.exhaustion_day is None else day_date(self.exhaustion_day)


class BudgetIncident(Record):
    """The month's open ``budget_burn`` alert and what it last said."""

    alert_id: str
    month: int
    """First day number of the month it is about."""
    exhaustion_day: int
    severity: int


class BudgetState(Record):
    """One budget's spend, day by day, and its open incident: a record of the team's (or
    user's) state (:mod:`tokenradar.detectors.records`).

    Examples
    --------
    >>> state = BudgetState()
    >>> monday = 20_759 * DAY_SECONDS            # 2026-11-02, a Monday
    >>> for d in range(7):                       # $100 a weekday, $10 a weekend day
    ...     _ = state.add(monday + d * DAY_SECONDS + 3600, 10.0 if d >= 5 else 100.0)
    >>> forecast = state.forecast(20_766, budget=2_000.0, weekdays=5, weekend_days=4)
    >>> forecast.weekday_pace, forecast.weekend_pace
    (100.0, 10.0)
    >>> round(forecast.projected), forecast.exhaustion_date
    (2180, datetime.date(2026, 11, 27))
    """

    day: int = -1
    """Day number of the last entry of ``spend`` (-1: nothing spent yet)."""
    spend: list[float] = []
    """Spend of each day up to ``day``, oldest first, at most HISTORY_DAYS."""
    incident: BudgetIncident | None = None

    def add(self, time: float, cost: float) -> bool:
        """Add a request's cost on its day; True when it opens a new day (the last one
        is then complete). A day before the history is forgotten."""
        day = day_number(time)
        opened = day > self.day
        if opened:
            if self.day < 0:
                self.spend = [0.0]
            else:
                self.spend.extend([0.0] * (day - self.day))
                del self.spend[:-HISTORY_DAYS]
            self.day = day
        index = len(self.spend) - 1 - (self.day - day)
        if index >= 0:
            self.spend[index] += cost
        return opened

    def spent_on(self, day: int) -> float:
        index = len(self.spend) - 1 - (self.day - day)
        return self.spend[index] if 0 <= index < len(self.spend) and day <= self.day else 0.0

    def month_to_date(self, day: int) -> float:
        start, _ = month_bounds(day)
        return sum(self.spent_on(d) for d in range(start, day + 1))

    def pace(self, today: int, weekdays: int, weekend_days: int) -> tuple[float, float] | None:
        """Mean spend of the last ``weekdays`` complete weekdays before ``today``, and of
        the last ``weekend_days`` complete weekend days (fewer if the history is shorter);
        None until the history holds ``weekdays`` weekdays and a weekend day."""
        first_known = self.day - len(self.spend) + 1
        weekday_spend: list[float] = []
        weekend_spend: list[float] = []
        for day in range(today - 1, max(first_known, today - HISTORY_DAYS) - 1, -1):
            spend = weekend_spend if is_weekend(day) else weekday_spend
            if len(spend) < (weekend_days if is_weekend(day) else weekdays):
                spend.append(self.spent_on(day))
        if len(weekday_spend) < weekdays or not weekend_spend:
            return None
        return (sum(weekday_spend) / len(weekday_spend),
                sum(weekend_spend) / len(weekend_spend))

    def forecast(self, today: int, budget: float, weekdays: int,
                 weekend_days: int) -> BudgetForecast | None:
        """The month's projection on ``today``; None while the pace is unknown."""
        pace = self.pace(today, weekdays, weekend_days)
        if pace is None:
            return None
        weekday, weekend = pace
        start, end = month_bounds(today)
        spent = self.month_to_date(today)
        exhaustion = None
        total = 0.0
        for d in range(start, today + 1):  # the day the spend so far passed the budget
            total += self.spent_on(d)
            if exhaustion is None and total >= budget:
                exhaustion = d
        projected = spent
        for d in range(today, end + 1):
            rate = weekend if is_weekend(d) else weekday
            projected += max(0.0, rate - self.spent_on(d)) if d == today else rate
            if exhaustion is None and projected >= budget:
                exhaustion = d
        return BudgetForecast(today, spent, projected, budget, weekday, weekend, exhaustion)


def urgency_score(forecast: BudgetForecast) -> float:
    """How soon the budget runs out, in [0, 1]: 1 - days left / 35."""
    days_left = forecast.days_left
    if days_left is None:
        return 0.0
    return max(0.0, min(1.0, 1.0 - days_left / URGENCY_DAYS))


def money(dollars: float) -> str:
    """Dollars for a sentence: cents below $100, whole dollars above.

    >>> money(0.0412), money(340.2), money(12_345.678), money(0.004)
    ('$0.04', '$340', '$12,346', 'under $0.01')
    """
    if dollars < 0.005:
        return "under $0.01"
    return f"${dollars:,.0f}" if dollars >= 100 else f"${dollars:,.2f}"


def budget_finding(whose: str, forecast: BudgetForecast) -> Finding:
    """The ``budget_burn`` finding of a forecast that runs out this month."""
    when = forecast.exhaustion_date
    today = day_date(forecast.day)
    pace = (f"{money(forecast.weekday_pace)} a weekday, {money(forecast.weekend_pace)} a "
            "weekend day")
    if forecast.spent >= forecast.budget:
        sentence = (f"{whose} has spent {money(forecast.spent)} this month, past its "
                    f"{money(forecast.budget)} budget since {when:%b %d}; at the current pace "
                    f"({pace}) the month ends near {money(forecast.projected)}.")
    else:
        working = forecast.working_days_left
        days = f"{working} working day{'' if working == 1 else 's'} from now"
        sentence = (f"{whose} has spent {money(forecast.spent)} of its {money(forecast.budget)} "
                    f"monthly budget by {today:%b %d}; at the current pace ({pace}) it will "
                    f"run out on {when:%a %b %d} ({days}) and end the month near "
                    f"{money(forecast.projected)}.")
    return Finding(score=urgency_score(forecast), feature="projected_month_spend_usd",
                   observed=forecast.projected, expected=forecast.budget,
                   explanation=sentence)


class BudgetBurn:
    """``budget_burn`` (declared in :mod:`tokenradar.schemas.kinds`, raised by the engine's
    budgets stage): spend against a monthly budget, forecast at the current pace.

    Unlike the declared detectors, it reads money, not surprise, and belongs to whoever
    holds the budget (a team, or a user), whose :class:`BudgetState` it keeps; its
    configuration is ``[budgets]``, not a detector section.
    """

    def __init__(self, config: BudgetsConfig) -> None:
        self.config = config

    def observe(self, state: BudgetState, budget: float, time: float,
                cost: float) -> BudgetForecast | None:
        """Add a request's cost; the forecast when one is due: a day closed (this is the
        first request of a later day), or the spend passed the budget just now."""
        opened = state.add(time, cost)
        today = day_number(time)
        if not opened:
            if today < state.day:
                return None  # a late request: its day is already judged
            spent = state.month_to_date(today)
            if not spent >= budget > spent - cost:
                return None
        return state.forecast(today, budget, self.config.pace_weekdays,
                              self.config.pace_weekend_days)

    def update(self, state: BudgetState, forecast: BudgetForecast, severity: int,
               new_alert_id: str) -> tuple[str, bool] | None:
        """Open the month's incident, or update it when its projected date or severity
        moved: (alert id, whether it re-publishes); None when nothing is to be said."""
        if forecast.exhaustion_day is None:
            return None
        month = month_bounds(forecast.day)[0]
        incident = state.incident
        if incident is None or incident.month != month:
            state.incident = BudgetIncident(new_alert_id, month, forecast.exhaustion_day,
                                            severity)
            return new_alert_id, False
        if (incident.exhaustion_day, incident.severity) == (forecast.exhaustion_day, severity):
            return None
        incident.exhaustion_day, incident.severity = forecast.exhaustion_day, severity
        return incident.alert_id, True
