"""Verdicts in the lab: on the report's timeline, given by a reviewer who knows the
labels, and precision with and without them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tokenradar.lab.evaluate import IncidentLabel
from tokenradar.lab.evaluation_text import run_evaluation
from tokenradar.lab.report import ReportBuilder
from tokenradar.lab.reviewer import REVIEW_DELAY, SILENCE, review
from tokenradar.schemas import AnomalyEvent, TokenUsageEvent
from tokenradar.schemas.feedback import FeedbackVerdict

T0 = datetime(2026, 11, 10, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _alert(user: str, at: datetime, kind: str = "spike") -> AnomalyEvent:
    return AnomalyEvent(alert_id=f"{user}-{kind}-{int(at.timestamp())}", user_id=user,
                        team="core", kind=kind, detector=kind, score=0.9, severity="high",
                        event_time=at, detected_at=at, feature="f", observed=1.0,
                        expected=1.0, event_ids=["e"], explanation="x", config_version="c")


def test_verdicts_are_drawn_on_their_users_timeline_with_their_silence() -> None:
    report = ReportBuilder(alert_threshold=0.6, config_version="c")
    for hour in range(72):
        report.observe(TokenUsageEvent(event_id=f"e{hour}", user_id="ana", team="core",
                                       model="m", timestamp=T0 + hour * HOUR,
                                       input_tokens=1000, output_tokens=0), 0.1, [], None)
    report.add_verdicts([FeedbackVerdict(
        alert_id="abcdef1234567890", verdict="expected", user_id="ana", team="core",
        kind="spike", timestamp=T0 + 2 * HOUR, until=T0 + 50 * HOUR, note="a <big> export")])
    report.silenced.update(["verdict", "verdict"])
    page = report.render()
    plot = page[page.index("<h3>ana</h3>"):]
    (marker,) = re.findall(r'<polygon[^>]*class="verdict"[^>]*><title>([^<]*)</title>', plot)
    assert "verdict expected on spike alert abcdef123456" in marker
    assert "silenced until 2026-11-12 11:00" in marker and "a &lt;big&gt; export" in marker
    assert plot.count('class="silence"') == 1
    assert "alerts silenced by verdicts 2" in page


def _labels() -> list[IncidentLabel]:
    return [IncidentLabel("i1", "spike", "ana", "core", T0, T0 + HOUR),
            IncidentLabel("b1", "new_joiner", "cy", "core", T0, T0 + 48 * HOUR, benign=True)]


def test_the_reviewer_says_true_on_incidents_expected_on_benign_and_false_otherwise() -> None:
    alerts = [_alert("ana", T0 + HOUR / 2), _alert("bo", T0), _alert("cy", T0 + 3 * HOUR),
              _alert("bo", T0 + 5 * HOUR),  # inside bo's silence: never raised with it
              _alert("bo", T0 + 6 * HOUR, kind="rate")]
    verdicts = review(_labels(), alerts)
    assert [(v.user_id, v.kind, v.verdict) for v in verdicts] == [
        ("bo", "spike", "false"), ("ana", "spike", "true"), ("cy", "spike", "expected"),
        ("bo", "rate", "false")]
    first = verdicts[0]
    assert first.timestamp == T0 + REVIEW_DELAY
    assert first.until == T0 + REVIEW_DELAY + SILENCE


def test_evaluate_prints_precision_with_and_without_verdicts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels, alerts, judged = (tmp_path / name for name in ("l.jsonl", "a.jsonl", "j.jsonl"))
    labels.write_text("".join(json.dumps(
        {"incident_id": label.incident_id, "kind": label.kind, "user_id": label.user_id,
         "team": label.team, "start": label.start.isoformat(), "end": label.end.isoformat(),
         "benign": label.benign}) + "\n" for label in _labels()))
    everything = [_alert("ana", T0 + HOUR / 2), _alert("bo", T0), _alert("bo", T0 + 30 * HOUR)]
    alerts.write_text("".join(a.model_dump_json() + "\n" for a in everything))
    judged.write_text("".join(a.model_dump_json() + "\n" for a in everything[:2]))
    verdicts = tmp_path / "v.jsonl"
    run_evaluation(labels, alerts, alerts_with_feedback=judged, verdicts_out=verdicts,
                   json_out=tmp_path / "e.json")
    out = capsys.readouterr().out
    table = out[out.index("Precision without and with verdicts"):]
    all_row = next(line for line in table.splitlines() if line.startswith("all"))
    assert all_row.split() == ["all", "3", "33%", "2", "2", "50%", "1"]
    assert "wrote 2 verdicts (false 1, true 1)" in out
    assert len(verdicts.read_text().splitlines()) == 2
    document = json.loads((tmp_path / "e.json").read_text())
    assert document["with_verdicts"]["alerts"]["all"]["alerts"] == 2
