"""Evaluation: how well the alerts of a run find the labelled incidents of a simulation.

The labels come from ``tokenradar simulate --labels``, the alerts from ``tokenradar
replay --alerts-out`` (or the alerts topic). An alert *matches* a non-benign label
when it is about the same ``user_id`` (for a team-wide ``population_shift``,
``team:<team>``) and its event time falls in the label's span, widened by
:data:`MATCH_BEFORE` before and :data:`MATCH_AFTER` after. An incident is detected
when at least one alert matches it, whatever the alert's kind. Alerts that match
no non-benign label are false alerts, including those on the members of a team
whose shift should have been reported once, for the team (CONTRACT.md section 2).
Labels marked ``"benign": true`` (a return from vacation, a new joiner) are context
that must not alert: alerts on them are false alerts, also counted on their own.
Alerts are counted once per ``alert_id``: an incident that worsens is re-published
under its id (one incident, one alert, updated), and consumers drop repeats by id.

Examples
--------
>>> from datetime import UTC, datetime
>>> start = datetime(2026, 11, 2, 9, tzinfo=UTC)
>>> label = IncidentLabel("i1", "spike", "ana", "core", start, start + MATCH_AFTER)
>>> evaluation = evaluate([label], [], active_user_days=20)
>>> evaluation.overall.recall, evaluation.alerts_overall.false_alerts_per_1000_user_days
(0.0, 0.0)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.kinds import POPULATION_SHIFT, declared_kinds

MATCH_BEFORE = timedelta(minutes=5)
"""An alert up to this long before a label's start still matches: the simulator's
start is the first injected request, and an hour's bucket may straddle it."""
MATCH_AFTER = timedelta(hours=2)
"""An alert up to this long after a label's end still matches: hourly features only
close when the hour does, and a baseline-relative detector needs some evidence."""


@dataclass(frozen=True)
class IncidentLabel:
    """One labelled incident (or, with ``benign``, context that must not alert)."""

    incident_id: str
    kind: str
    user_id: str
    team: str | None
    start: datetime
    end: datetime
    benign: bool = False
    members: tuple[str, ...] = ()
    """For a team-wide label (``user_id`` ``team:<team>``): the team's user ids."""

    def window(self) -> tuple[datetime, datetime]:
        """The event-time span in which an alert matches this label."""
        return self.start - MATCH_BEFORE, self.end + MATCH_AFTER


@dataclass(frozen=True)
class IncidentOutcome:
    """One non-benign label and the alerts that matched it, in event-time order."""

    label: IncidentLabel
    alerts: tuple[AnomalyEvent, ...]

    @property
    def detected(self) -> bool:
        return bool(self.alerts)

    @property
    def delay(self) -> timedelta | None:
        """First matching alert's event time minus the label's start (may be slightly < 0)."""
        return self.alerts[0].event_time - self.label.start if self.alerts else None


@dataclass(frozen=True)
class IncidentFigures:
    """Detection figures over the incidents of one labelled kind (or ``all``)."""

    kind: str
    incidents: int
    detected: int
    median_delay: timedelta | None
    p90_delay: timedelta | None
    kind_detected: int
    """Incidents with a matching alert of the label's own kind."""
    alerts_per_incident_mean: float | None
    alerts_per_incident_max: int | None

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None

    @property
    def kind_recall(self) -> float | None:
        """Recall when only an alert of the label's kind counts: did it say what happened?"""
        return self.kind_detected / self.incidents if self.incidents else None


@dataclass(frozen=True)
class AlertFigures:
    """Precision and false-alert rate over the alerts of one alert kind (or ``all``)."""

    kind: str
    alerts: int
    matched: int
    on_benign: int
    """False alerts that fell on a benign label."""
    active_user_days: int | None

    @property
    def false_alerts(self) -> int:
        return self.alerts - self.matched

    @property
    def precision(self) -> float | None:
        return self.matched / self.alerts if self.alerts else None

    @property
    def false_alerts_per_1000_user_days(self) -> float | None:
        if not self.active_user_days:
            return None
        return 1000.0 * self.false_alerts / self.active_user_days


@dataclass(frozen=True)
class PopulationShiftFigures:
    """How many members of a shifting team got an individual alert during the shift."""

    incident_id: str
    team: str | None
    members: int
    members_alerted: int
    benign: bool = False

    @property
    def share(self) -> float | None:
        return self.members_alerted / self.members if self.members else None


@dataclass(frozen=True)
class BenignFigures:
    """Alerts on the benign labels of one kind: each one a false alert."""

    kind: str
    labels: int
    labels_alerted: int
    alerts: int


@dataclass(frozen=True)
class Evaluation:
    """Every figure of one evaluation; :func:`format_evaluation` prints it."""

    by_kind: list[IncidentFigures]
    overall: IncidentFigures
    alerts_by_kind: list[AlertFigures]
    alerts_overall: AlertFigures
    population_shifts: list[PopulationShiftFigures]
    benign: list[BenignFigures]
    outcomes: list[IncidentOutcome]
    benign_labels: list[IncidentLabel] = field(default_factory=list)
    active_user_days: int | None = None

    @property
    def population_shift_share(self) -> float | None:
        members = sum(shift.members for shift in self.population_shifts)
        alerted = sum(shift.members_alerted for shift in self.population_shifts)
        return alerted / members if members else None

    def to_dict(self) -> dict[str, Any]:
        """All figures as plain JSON values; delays in minutes and in days."""
        return {
            "match_window": {"before_minutes": MATCH_BEFORE / timedelta(minutes=1),
                             "after_minutes": MATCH_AFTER / timedelta(minutes=1)},
            "active_user_days": self.active_user_days,
            "incidents": {f.kind: _incident_dict(f) for f in [*self.by_kind, self.overall]},
            "alerts": {f.kind: _alert_dict(f) for f in [*self.alerts_by_kind,
                                                       self.alerts_overall]},
            "population_shift": {
                "members_alerted_share": self.population_shift_share,
                "shifts": [{"incident_id": s.incident_id, "team": s.team, "benign": s.benign,
                            "members": s.members,
                            "members_alerted": s.members_alerted, "share": s.share}
                           for s in self.population_shifts]},
            "benign": {b.kind: {"labels": b.labels, "labels_alerted": b.labels_alerted,
                                "false_alerts": b.alerts} for b in self.benign},
            "outcomes": [{"incident_id": o.label.incident_id, "kind": o.label.kind,
                          "user_id": o.label.user_id, "detected": o.detected,
                          "delay_minutes": _minutes(o.delay), "alerts": len(o.alerts),
                          "first_alert_kind": o.alerts[0].kind if o.alerts else None}
                         for o in self.outcomes],
        }


def evaluate(labels: Iterable[IncidentLabel], alerts: Iterable[AnomalyEvent],
             active_user_days: int | None) -> Evaluation:
    """Match alerts to labels and compute every figure (see the module docstring)."""
    all_labels = list(labels)
    incidents = [label for label in all_labels if not label.benign]
    benign = [label for label in all_labels if label.benign]
    by_user: dict[str, list[AnomalyEvent]] = defaultdict(list)
    ordered = _first_of_each_id(sorted(alerts, key=lambda alert: alert.event_time))
    for alert in ordered:
        by_user[alert.user_id].append(alert)

    outcomes, matched_ids = [], set()
    for label in incidents:
        found = tuple(_in_window(by_user[label.user_id], *label.window()))
        outcomes.append(IncidentOutcome(label, found))
        matched_ids.update(id(alert) for alert in found)

    benign_alert_ids: set[int] = set()
    benign_counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for label in benign:
        found = [alert for user in (label.user_id, *label.members)
                 for alert in _in_window(by_user[user], *label.window())
                 if id(alert) not in matched_ids]
        benign_alert_ids.update(id(alert) for alert in found)
        counts = benign_counts[label.kind]
        counts[0] += 1
        counts[1] += bool(found)
        counts[2] += len(found)

    shifts = []
    for label in all_labels:  # a shift may be an incident or benign (a team adopting AI)
        if label.kind != POPULATION_SHIFT.name:
            continue
        alerted = sum(1 for member in label.members
                      if any(True for _ in _in_window(by_user[member], label.start,
                                                      label.end + MATCH_AFTER)))
        shifts.append(PopulationShiftFigures(label.incident_id, label.team,
                                             len(label.members), alerted, label.benign))

    incident_kinds = _ordered_kinds(o.label.kind for o in outcomes)
    alert_kinds = _ordered_kinds(alert.kind for alert in ordered)

    def alert_figures(kind: str, group: list[AnomalyEvent]) -> AlertFigures:
        return AlertFigures(kind, len(group), sum(id(a) in matched_ids for a in group),
                            sum(id(a) in benign_alert_ids for a in group), active_user_days)

    return Evaluation(
        by_kind=[_incident_figures(k, [o for o in outcomes if o.label.kind == k])
                 for k in incident_kinds],
        overall=_incident_figures("all", outcomes),
        alerts_by_kind=[alert_figures(k, [a for a in ordered if a.kind == k])
                        for k in alert_kinds],
        alerts_overall=alert_figures("all", ordered),
        population_shifts=shifts,
        benign=[BenignFigures(kind, *benign_counts[kind])
                for kind in _ordered_kinds(benign_counts)],
        outcomes=outcomes,
        benign_labels=benign,
        active_user_days=active_user_days,
    )


def _first_of_each_id(alerts: list[AnomalyEvent]) -> list[AnomalyEvent]:
    """One alert per alert_id: a worsening incident is re-published under its id, and a
    redelivered alert repeats it; both are the same alert."""
    seen: set[str] = set()
    first = []
    for alert in alerts:
        if alert.alert_id not in seen:
            seen.add(alert.alert_id)
            first.append(alert)
    return first


def _in_window(alerts: list[AnomalyEvent], first: datetime, last: datetime
               ) -> Iterator[AnomalyEvent]:
    return (alert for alert in alerts if first <= alert.event_time <= last)


def _incident_figures(kind: str, outcomes: list[IncidentOutcome]) -> IncidentFigures:
    detected = [o for o in outcomes if o.detected]
    delays = sorted(o.delay.total_seconds() for o in detected if o.delay is not None)
    counts = [len(o.alerts) for o in detected]
    return IncidentFigures(
        kind=kind, incidents=len(outcomes), detected=len(detected),
        median_delay=_seconds(percentile(delays, 0.5)),
        p90_delay=_seconds(percentile(delays, 0.9)),
        kind_detected=sum(any(a.kind == o.label.kind for a in o.alerts) for o in detected),
        alerts_per_incident_mean=sum(counts) / len(counts) if counts else None,
        alerts_per_incident_max=max(counts) if counts else None,
    )


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile of sorted ``values``, interpolated linearly between ranks.

    >>> percentile([10.0, 20.0, 30.0, 40.0, 50.0], 0.9)
    46.0
    """
    if not values:
        return None
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _ordered_kinds(kinds: Iterable[str]) -> list[str]:
    """The declared kinds present, in the order declared; then others (labels of benign
    changes), alphabetically."""
    present = set(kinds)
    declared = [kind.name for kind in declared_kinds()]
    return [kind for kind in declared if kind in present] + sorted(present - set(declared))


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _minutes(delay: timedelta | None) -> float | None:
    return None if delay is None else round(delay / timedelta(minutes=1), 2)


def _days(delay: timedelta | None) -> float | None:
    return None if delay is None else round(delay / timedelta(days=1), 3)


def _incident_dict(f: IncidentFigures) -> dict[str, Any]:
    return {"incidents": f.incidents, "detected": f.detected, "recall": f.recall,
            "kind_recall": f.kind_recall,
            "median_delay_minutes": _minutes(f.median_delay),
            "p90_delay_minutes": _minutes(f.p90_delay),
            "median_delay_days": _days(f.median_delay), "p90_delay_days": _days(f.p90_delay),
            "alerts_per_incident_mean": f.alerts_per_incident_mean,
            "alerts_per_incident_max": f.alerts_per_incident_max}


def _alert_dict(f: AlertFigures) -> dict[str, Any]:
    return {"alerts": f.alerts, "matched": f.matched, "precision": f.precision,
            "false_alerts": f.false_alerts, "false_alerts_on_benign_labels": f.on_benign,
            "false_alerts_per_1000_user_days": f.false_alerts_per_1000_user_days}
