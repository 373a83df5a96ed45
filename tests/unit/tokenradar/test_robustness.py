"""The robustness matrix's own figures: creeps found before they double, team shifts
reported in time, the noisiest identity, and targets judged on the worst organisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tokenradar.lab.evaluate import IncidentLabel, evaluate
from tokenradar.lab.robustness import TARGETS, figure, organisation_figures
from tokenradar.schemas import AnomalyEvent

MONDAY = datetime(2026, 11, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def _alert(number: int, user: str, at: datetime, kind: str) -> AnomalyEvent:
    return AnomalyEvent(alert_id=f"a{number}", user_id=user, team="core", kind=kind,
                        detector=kind, score=0.9, severity="high", event_time=at,
                        detected_at=at, feature="tokens_per_hour", observed=10.0,
                        expected=1.0, event_ids=["e1"], explanation="x", config_version="c")


def test_creeps_count_when_found_before_doubling_and_shifts_within_three_working_days(
        ) -> None:
    labels = [
        IncidentLabel("creep-1", "creep", "ana", "core", MONDAY, MONDAY + 20 * DAY),
        IncidentLabel("creep-2", "creep", "bo", "core", MONDAY, MONDAY + 20 * DAY),
        IncidentLabel("creep-slow", "creep", "cy", "core", MONDAY, MONDAY + 20 * DAY),
        # ramps Monday to Thursday; 3 working days later is the next Tuesday
        IncidentLabel("shift-1", "population_shift", "team:core", "core", MONDAY,
                      MONDAY + 20 * DAY, members=("ana", "bo", "dee")),
        IncidentLabel("shift-2", "population_shift", "team:web", "web", MONDAY,
                      MONDAY + 20 * DAY, members=("eve",)),
    ]
    params = {"creep-1": {"daily_growth": 0.06, "doubles_at": (MONDAY + 10 * DAY).isoformat()},
              "creep-2": {"daily_growth": 0.08, "doubles_at": (MONDAY + 8 * DAY).isoformat()},
              "creep-slow": {"daily_growth": 0.03, "doubles_at": (MONDAY + 30 * DAY).isoformat()},
              "shift-1": {"ramp_days": 3}, "shift-2": {"ramp_days": 3}}
    alerts = [_alert(1, "ana", MONDAY + 9 * DAY, "creep"),     # before it doubled
              _alert(2, "bo", MONDAY + 9 * DAY, "creep"),      # a day after it doubled
              _alert(3, "team:core", MONDAY + 8 * DAY, "population_shift"),  # Tuesday: in time
              _alert(4, "team:web", MONDAY + 9 * DAY, "population_shift"),   # Wednesday: late
              _alert(5, "zed", MONDAY, "spike"), _alert(6, "zed", MONDAY + DAY, "gaming"),
              _alert(7, "yan", MONDAY, "spike")]
    row = organisation_figures(evaluate(labels, alerts, active_user_days=1000), alerts, params)

    assert row["creeps_fast"] == 2  # the 3%/day creep is not held to doubling
    assert row["creep_before_doubling"] == 0.5
    assert row["shifts"] == 2
    assert row["shifts_reported"] == 1.0
    assert row["shifts_in_time"] == 0.5
    assert row["noisiest_identity"] == 2
    assert row["false_per_1000"] == 3.0
    # ana and bo are members of the shifted team and were alerted (for their creeps)
    assert row["shift_members_alerted"] == 0.5


def test_targets_judge_the_worst_organisation() -> None:
    rows = [{"false_per_1000": 0.2, "recall": {"spike": 1.0}},
            {"false_per_1000": 0.7, "recall": {"spike": 0.9}}]
    by_name = {target.figure: target for target in TARGETS}
    false_alerts, spikes = by_name["false_per_1000"], by_name["recall.spike"]
    assert false_alerts.worst([figure(r, "false_per_1000") or 0 for r in rows]) == 0.7
    assert not false_alerts.met(0.7) and false_alerts.met(0.5)
    assert spikes.worst([figure(r, "recall.spike") or 0 for r in rows]) == 0.9
    assert not spikes.met(0.9) and spikes.met(0.95)
    assert figure(rows[0], "recall.gaming") is None
