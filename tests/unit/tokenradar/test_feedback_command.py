"""``tokenradar feedback`` with files (the broker's side is in tests/integration), and
``replay --feedback``: what a user sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenradar.cli import main
from tokenradar.schemas.feedback import FeedbackVerdict

ALERT = {"alert_id": "893719122cb59c3534289cb7", "user_id": "user-0084", "team": "search",
         "kind": "spike", "detector": "spike", "score": 1.0, "severity": "critical",
         "event_time": "2026-11-11T18:11:46.308000Z",
         "detected_at": "2026-11-11T18:11:46.308000Z", "feature": "tokens_per_request",
         "observed": 585702.0, "expected": 7382.28, "event_ids": ["req-1"],
         "explanation": "One request used 585,702 tokens.", "config_version": "78f39be08054"}


@pytest.fixture
def alerts_file(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.jsonl"
    other = {**ALERT, "alert_id": "893719aa2cb59c3534289cb7", "user_id": "user-0001"}
    path.write_text(json.dumps(ALERT) + "\n" + json.dumps(other) + "\n")
    return path


def test_a_false_verdict_found_by_a_prefix_is_appended_with_the_alerts_user_and_kind(
        alerts_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "feedback.jsonl"
    assert main(["feedback", "89371912", "--verdict", "false", "--for", "36h",
                 "--at", "2026-11-11T19:00:00Z", "--note", "a batch export",
                 "--alerts", str(alerts_file), "--out", str(out)]) == 0
    verdict = FeedbackVerdict.model_validate_json(out.read_text())
    assert (verdict.alert_id, verdict.user_id, verdict.team, verdict.kind) == (
        ALERT["alert_id"], "user-0084", "search", "spike")
    assert verdict.until is not None
    assert (verdict.until - verdict.timestamp).total_seconds() == 36 * 3600
    assert verdict.note == "a batch export"
    said = capsys.readouterr().out
    assert "silenced" in said and "2026-11-13 07:00" in said


def test_a_true_verdict_silences_nothing(alerts_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "feedback.jsonl"
    assert main(["feedback", ALERT["alert_id"], "--verdict", "true", "--alerts",
                 str(alerts_file), "--out", str(out)]) == 0
    assert FeedbackVerdict.model_validate_json(out.read_text()).until is None


@pytest.mark.parametrize(("args", "message"), [
    (["8937"], "too short"),
    (["8937aa00"], "no alert 8937aa00"),
    (["8937191", "--for", "two weeks"], "not a duration"),
    (["8937191", "--at", "yesterday"], "give a time with an offset"),
    (["8937191", "--for", "0d"], "not a duration"),
])
def test_mistakes_are_one_line_saying_how_to_fix_them(
        args: list[str], message: str, alerts_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", *args, "--verdict", "false", "--alerts", str(alerts_file),
                 "--out", str(tmp_path / "f.jsonl")]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_an_ambiguous_prefix_names_the_alerts_it_starts(
        alerts_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "893719", "--verdict", "false", "--alerts", str(alerts_file),
                 "--out", str(tmp_path / "f.jsonl")]) == 2
    error = capsys.readouterr().err
    assert "893719aa2cb59c3534289cb7" in error and ALERT["alert_id"] in error
    assert "give more of it" in error
    assert not (tmp_path / "f.jsonl").exists()


def test_replay_with_a_feedback_file_that_is_not_verdicts_names_the_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, feedback = tmp_path / "events.jsonl", tmp_path / "feedback.jsonl"
    events.write_text("")
    feedback.write_text(json.dumps({"alert_id": "a1", "verdict": "false"}) + "\n")
    assert main(["replay", "--input", str(events), "--alerts-out",
                 str(tmp_path / "alerts.jsonl"), "--feedback", str(feedback)]) == 2
    error = capsys.readouterr().err
    assert f"{feedback} line 1 is not a verdict" in error and "Traceback" not in error


def test_schema_lists_the_feedback_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {"alert_id", "verdict", "user_id", "kind", "timestamp", "until"} <= set(
        document["token-anomalies.feedback"]["properties"])
