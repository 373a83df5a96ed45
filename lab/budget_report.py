"""The report's budget curves: each budget's month-to-date spend against its budget.

:class:`BudgetCurves` takes every scored event's cost (priced as the engine does) and the
``budget_burn`` alerts while ``replay`` runs, keeping one number per budget and UTC
day; :meth:`BudgetCurves.section` draws, per team (or user) with a budget, the
cumulative spend of each month, the budget, and each ``budget_burn`` alert with the
line from where it was raised to the exhaustion it projected.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import UTC, datetime

from tokenradar.detectors.budget import DAY_SECONDS, day_number, month_bounds
from tokenradar.detectors.spend import Pricing
from tokenradar.lab.svg import LinearScale, element, group, points, svg, time_axis
from tokenradar.schemas import AnomalyEvent, TokenUsageEvent
from tokenradar.schemas.kinds import BUDGET_BURN
from tokenradar.schemas.money import BudgetsConfig, PriceTable

WIDTH = 1240
SPEND, BUDGET, BURN = "#222", "#c00", "#ff7f0e"


class BudgetCurves:
    """Daily spend of every budgeted team and user, and their budget_burn alerts."""

    def __init__(self, budgets: BudgetsConfig, prices: PriceTable) -> None:
        self.pricing = Pricing(prices)
        self.budgets = {f"team:{team}": amount for team, amount in budgets.teams.items()}
        self.budgets.update(budgets.users)
        self.daily: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        self.burns: dict[str, list[AnomalyEvent]] = defaultdict(list)

    def observe(self, event: TokenUsageEvent, alerts: list[AnomalyEvent]) -> None:
        day = day_number(event.epoch_seconds)
        cost = self.pricing.cost_of(event)
        for owner in (f"team:{event.team}" if event.team else None, event.user_id):
            if owner in self.budgets:
                self.daily[owner][day] += cost
        for alert in alerts:
            if alert.kind == BUDGET_BURN.name:
                self.burns[alert.user_id].append(alert)

    def section(self) -> str:
        parts = ["<h2>Budgets</h2>",
                 "<p>Month-to-date spend (USD, UTC days) of each team and user with a "
                 "budget, the budget, and each budget_burn alert (raised, or updated as its "
                 "forecast moved) with a line to the exhaustion it projected.</p>"]
        for owner in sorted(self.budgets):
            parts.append(self._plot(owner))
        return "\n".join(parts)

    def _plot(self, owner: str) -> str:
        budget, days = self.budgets[owner], self.daily.get(owner, {})
        if not days:
            return f"<h3>{html.escape(owner)}</h3>\n<p class=\"sub\">no spend seen</p>"
        first, last = min(days), max(days)
        curve: list[tuple[float, float]] = []
        month, total = None, 0.0
        for day in range(first, last + 1):
            start = month_bounds(day)[0]
            if start != month:
                month, total = start, 0.0
                curve.append((day * DAY_SECONDS, 0.0))
            total += days.get(day, 0.0)
            curve.append(((day + 1) * DAY_SECONDS, total))
        burns = self.burns.get(owner, [])
        end = max([(last + 1) * DAY_SECONDS]
                  + [_midnight(b) + DAY_SECONDS for b in burns if b.exhaustion_date])
        left, right, top, bottom, height = 70.0, 20.0, 20.0, 230.0, 270.0
        x = LinearScale(first * DAY_SECONDS, end, left, WIDTH - right)
        y = LinearScale(0.0, max(budget, *(v for _, v in curve)) * 1.1, bottom, top)
        chart = [time_axis(x, first * DAY_SECONDS, end, top, bottom),
                 element("text", "USD this month", x=left - 8, y=top - 6, class_="tick"),
                 element("line", x1=left, x2=WIDTH - right, y1=y(budget), y2=y(budget),
                         stroke=BUDGET, stroke_dasharray="6 3"),
                 element("text", f"budget ${budget:,.0f}", x=left + 4, y=y(budget) - 4,
                         fill=BUDGET, class_="tick"),
                 element("polyline", points=points([(x(t), y(v)) for t, v in curve]),
                         fill="none", stroke=SPEND, stroke_width=1.5)]
        for burn in burns:
            at = burn.event_time.timestamp()
            spent = _spent_at(curve, at)
            marks = [element("circle", cx=x(at), cy=y(spent), r=4, fill=BURN)]
            if burn.exhaustion_date is not None:
                runs_out = _midnight(burn) + DAY_SECONDS / 2
                marks.append(element("line", x1=x(at), y1=y(spent), x2=x(runs_out),
                                     y2=y(budget), stroke=BURN, stroke_dasharray="3 2"))
            chart.append(group(marks, title=f"budget_burn {burn.severity}: {burn.explanation}",
                               class_="alert"))
        spent_all = sum(days.values())
        summary = (f"budget ${budget:,.0f} a month · ${spent_all:,.0f} spent over the run · "
                   f"{len({b.alert_id for b in burns})} budget_burn incidents, "
                   f"{len(burns)} messages")
        return (f"<h3>{html.escape(owner)}</h3>\n<p class=\"sub\">{html.escape(summary)}</p>\n"
                + svg(chart, WIDTH, height, f"month-to-date spend of {owner}"))


def _midnight(alert: AnomalyEvent) -> float:
    """Start of the alert's exhaustion day (of its event day, if it names none)."""
    when = alert.exhaustion_date or alert.event_time.date()
    return datetime(when.year, when.month, when.day, tzinfo=UTC).timestamp()


def _spent_at(curve: list[tuple[float, float]], time: float) -> float:
    """The curve's value at the last point up to ``time`` (its day's start)."""
    value = 0.0
    for at, spent in curve:
        if at > time:
            break
        value = spent
    return value
