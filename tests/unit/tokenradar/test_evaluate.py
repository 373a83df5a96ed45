"""tokenradar evaluate: matching alerts to labels, and the figures, checked by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tokenradar.lab.evaluate import IncidentLabel, evaluate
from tokenradar.lab.evaluation_files import (
    EvaluationInputError,
    count_active_user_days,
    load_alerts,
    load_labels,
)
from tokenradar.lab.evaluation_text import format_evaluation, run_evaluation
from tokenradar.schemas import AnomalyEvent

T0 = datetime(2026, 11, 10, 10, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def label(user: str = "ana", kind: str = "spike", start: datetime = T0,
          length: timedelta = timedelta(hours=1), number: int = 0, **extra: object
          ) -> IncidentLabel:
    return IncidentLabel(f"incident-{number:03d}", kind, user, "core", start, start + length,
                         **extra)  # type: ignore[arg-type]


_alerts_made = 0


def alert(user: str = "ana", at: datetime = T0, kind: str = "spike") -> AnomalyEvent:
    global _alerts_made
    _alerts_made += 1
    return AnomalyEvent(alert_id=f"a{_alerts_made}", user_id=user, team="core", kind=kind,
                        detector=kind, score=0.9, severity="high", event_time=at,
                        detected_at=at, feature="tokens_per_hour", observed=10.0,
                        expected=1.0, event_ids=["e1"], explanation="x",
                        config_version="cfg")


def test_alert_inside_window_detects_incident_with_delay_from_label_start() -> None:
    result = evaluate([label()], [alert(at=T0 + 12 * MIN)], active_user_days=100)

    assert result.overall.recall == 1.0
    assert result.outcomes[0].delay == 12 * MIN
    assert result.alerts_overall.precision == 1.0
    assert result.alerts_overall.false_alerts == 0


def test_alert_after_grace_window_is_a_false_alert() -> None:
    # label ends at 11:00; the window closes 2 h later, at 13:00.
    late = T0 + timedelta(hours=3, seconds=1)
    on_time = T0 + timedelta(hours=3)

    missed = evaluate([label()], [alert(at=late)], active_user_days=500)
    caught = evaluate([label()], [alert(at=on_time)], active_user_days=500)

    assert missed.overall.detected == 0
    assert missed.alerts_overall.false_alerts == 1
    assert missed.alerts_overall.false_alerts_per_1000_user_days == pytest.approx(2.0)
    assert caught.overall.detected == 1


def test_alert_up_to_five_minutes_before_start_matches_and_earlier_does_not() -> None:
    just_before = evaluate([label()], [alert(at=T0 - 4 * MIN)], active_user_days=None)
    too_early = evaluate([label()], [alert(at=T0 - 6 * MIN)], active_user_days=None)

    assert just_before.overall.detected == 1
    assert just_before.outcomes[0].delay == -4 * MIN
    assert too_early.overall.detected == 0


def test_alert_on_another_user_does_not_detect_the_incident() -> None:
    result = evaluate([label(user="ana")], [alert(user="bob", at=T0 + MIN)], 10)

    assert result.overall.detected == 0
    assert result.alerts_overall.matched == 0


def test_median_and_p90_delay_and_recall_per_kind() -> None:
    labels = [label(user=f"u{i}", number=i) for i in range(6)]
    # five detected after 10..50 min, the sixth missed
    alerts = [alert(user=f"u{i}", at=T0 + (10 * (i + 1)) * MIN) for i in range(5)]

    spike = evaluate(labels, alerts, 10).by_kind[0]

    assert (spike.kind, spike.incidents, spike.detected) == ("spike", 6, 5)
    assert spike.recall == pytest.approx(5 / 6)
    assert spike.median_delay == 30 * MIN
    # linear between ranks: 40 + 0.6 * (50 - 40) = 46 min
    assert spike.p90_delay == 46 * MIN


def test_kind_recall_counts_only_alerts_of_the_labels_kind() -> None:
    labels = [label(user="ana", kind="gaming", number=1), label(user="bob", kind="gaming",
                                                                 number=2),
              label(user="cy", kind="gaming", number=3)]
    alerts = [alert("ana", T0 + MIN, "spike"), alert("ana", T0 + 2 * MIN, "gaming"),
              alert("bob", T0 + MIN, "spike")]  # cy: no alert at all

    gaming = evaluate(labels, alerts, 10).by_kind[0]

    assert gaming.detected == 2
    assert gaming.kind_detected == 1
    assert gaming.kind_recall == pytest.approx(1 / 3)


def test_precision_and_alerts_per_incident_over_detected_incidents() -> None:
    labels = [label("ana", number=1), label("bob", number=2), label("cy", number=3)]
    alerts = [alert("ana", T0 + MIN), alert("ana", T0 + 2 * MIN, "rate"),
              alert("ana", T0 + 3 * MIN, "drift"), alert("bob", T0 + MIN),
              alert("dee", T0)]  # dee has no label: a false alert

    result = evaluate(labels, alerts, 1000)

    assert result.alerts_overall.precision == pytest.approx(4 / 5)
    assert result.overall.alerts_per_incident_mean == 2.0  # (3 + 1) / 2, cy missed
    assert result.overall.alerts_per_incident_max == 3
    assert result.alerts_overall.false_alerts_per_1000_user_days == pytest.approx(1.0)
    by_kind = {a.kind: (a.alerts, a.matched) for a in result.alerts_by_kind}
    assert by_kind == {"spike": (3, 2), "rate": (1, 1), "drift": (1, 1)}


def test_population_shift_member_alerts_are_counted() -> None:
    shift = label("team:core", "population_shift", length=timedelta(days=2),
                  members=("a", "b", "c", "d"))
    alerts = [alert("team:core", T0 + timedelta(hours=5), "population_shift"),
              alert("a", T0 + timedelta(hours=1)),
              alert("a", T0 + timedelta(hours=2)),
              alert("b", T0 - MIN),  # before the shift started: not counted
              alert("c", T0 + timedelta(days=2, hours=1))]  # within end + 2 h: counted

    result = evaluate([shift], alerts, 100)

    assert result.overall.detected == 1
    assert result.by_kind[0].kind_recall == 1.0
    figures = result.population_shifts[0]
    assert (figures.members, figures.members_alerted) == (4, 2)
    assert result.population_shift_share == 0.5
    # individual alerts on members match no label: the shift is reported once, for the team
    assert result.alerts_overall.false_alerts == 4


def test_benign_team_shift_counts_member_alerts_as_false_alerts_on_benign() -> None:
    adoption = label("team:core", "population_shift", length=timedelta(days=2),
                     members=("a", "b", "c"), benign=True)
    alerts = [alert("team:core", T0 + HOUR, "population_shift"), alert("b", T0 + HOUR)]

    result = evaluate([adoption], alerts, 100)

    assert result.overall.incidents == 0
    assert result.population_shift_share == pytest.approx(1 / 3)
    assert result.population_shifts[0].benign
    assert (result.alerts_overall.false_alerts, result.alerts_overall.on_benign) == (2, 2)


def test_alerts_on_benign_labels_are_false_alerts_reported_separately() -> None:
    labels = [label("ana", "vacation_return", number=1, benign=True),
              label("bob", "new_joiner", number=2, benign=True),
              label("cy", "spike", number=3)]
    alerts = [alert("ana", T0 + MIN, "drift"), alert("ana", T0 + 9 * MIN, "spike"),
              alert("cy", T0 + MIN)]

    result = evaluate(labels, alerts, 100)

    assert result.overall.incidents == 1  # benign labels are not incidents
    assert result.alerts_overall.false_alerts == 2
    assert result.alerts_overall.on_benign == 2
    benign = {b.kind: (b.labels, b.labels_alerted, b.alerts) for b in result.benign}
    assert benign == {"new_joiner": (1, 0, 0), "vacation_return": (1, 1, 2)}


def test_false_alert_rate_is_not_available_without_events() -> None:
    result = evaluate([label()], [alert("zed")], active_user_days=None)

    assert result.alerts_overall.false_alerts_per_1000_user_days is None
    assert "n/a" in format_evaluation(result)


def test_a_long_delay_is_printed_in_days() -> None:
    creep = label("ana", "creep", length=timedelta(days=10))
    result = evaluate([creep], [alert("ana", T0 + timedelta(days=3), "creep")], 10)

    assert "3.0 days" in format_evaluation(result)
    assert "4320 min" not in format_evaluation(result)


def test_count_active_user_days_counts_distinct_user_and_utc_date(tmp_path: Path) -> None:
    def event(number: int, user: str, timestamp: str) -> str:
        return json.dumps({"event_id": f"e{number}", "user_id": user, "timestamp": timestamp,
                           "model": "m", "input_tokens": 1, "output_tokens": 1})

    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([
        event(1, "ana", "2026-11-10T09:00:00Z"),
        event(2, "ana", "2026-11-10T17:00:00Z"),        # same day
        event(3, "ana", "2026-11-11T01:00:00+02:00"),   # 23:00 UTC on the 10th: same day
        event(4, "ana", "2026-11-11T00:30:00Z"),        # a second day
        event(5, "bob", "2026-11-10T12:00:00Z"),
        "not json",                                     # skipped, as replay skips it
        "",
    ]) + "\n")

    assert count_active_user_days(path) == 3


def test_bad_label_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"incident_id": "i1", "kind": "spike", "user_id": "ana",
                                "start": "2026-11-10T10:00:00Z", "end": "2026-11-10T11:00:00Z"})
                    + "\n" + json.dumps({"incident_id": "i2", "kind": "spike", "user_id": "ana",
                                         "start": "2026-11-10T10:00:00Z"}) + "\n")

    with pytest.raises(EvaluationInputError, match=r"labels\.jsonl:2: bad label: 'end'"):
        load_labels(path)


def test_label_without_utc_offset_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"incident_id": "i1", "kind": "spike", "user_id": "ana",
                                "start": "2026-11-10T10:00:00", "end": "2026-11-10T11:00:00Z"}))

    with pytest.raises(EvaluationInputError, match=r":1: .*'start' has no UTC offset"):
        load_labels(path)


def test_bad_alert_line_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    good = alert().model_dump_json()
    broken = json.loads(good)
    broken["score"] = 3.0
    path.write_text(good + "\n\n" + json.dumps(broken) + "\n{oops\n")

    with pytest.raises(EvaluationInputError, match=r"alerts\.jsonl:3: .*field 'score'"):
        load_alerts(path)
    path.write_text(good + "\n{oops\n")
    with pytest.raises(EvaluationInputError, match=r"alerts\.jsonl:2: not valid JSON"):
        load_alerts(path)


def test_labels_written_by_the_simulator_load(tmp_path: Path) -> None:
    from tokenradar.lab.simulation import SimulationSpec, simulate, write_labels

    _, labels = simulate(SimulationSpec(users=12, days=14, seed=3))
    write_labels(tmp_path / "labels.jsonl", labels)

    loaded = load_labels(tmp_path / "labels.jsonl")

    assert [item.incident_id for item in loaded] == [item.incident_id for item in labels]
    assert all(item.start.tzinfo is not None and item.start <= item.end for item in loaded)


def test_run_evaluation_prints_tables_and_writes_json(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    labels, alerts, out = (tmp_path / name for name in ("l.jsonl", "a.jsonl", "e.json"))
    labels.write_text(json.dumps({"incident_id": "i1", "kind": "spike", "user_id": "ana",
                                  "team": "core", "start": "2026-11-10T10:00:00Z",
                                  "end": "2026-11-10T11:00:00Z"}) + "\n")
    alerts.write_text(alert("ana", T0 + 3 * MIN).model_dump_json() + "\n"
                      + alert("bob", T0).model_dump_json() + "\n")

    run_evaluation(labels, alerts, json_out=out)

    printed = capsys.readouterr().out
    assert "Incidents by labelled kind" in printed and "n/a" in printed
    figures = json.loads(out.read_text())
    assert figures["incidents"]["spike"]["recall"] == 1.0
    assert figures["incidents"]["spike"]["median_delay_minutes"] == 3.0
    assert figures["alerts"]["all"]["precision"] == 0.5
    assert figures["alerts"]["all"]["false_alerts_per_1000_user_days"] is None
