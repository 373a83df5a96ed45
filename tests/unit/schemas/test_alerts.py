"""AnomalyEvent: the bounds an alerting system can rely on."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tokenradar.schemas import MAX_EVENT_IDS, AnomalyEvent, AnomalyKind


@pytest.fixture
def alert() -> dict[str, Any]:
    return {
        "alert_id": "a1", "user_id": "ana", "team": "core", "kind": "spike",
        "detector": "spike", "score": 0.8, "severity": "high",
        "event_time": "2026-11-24T09:15:02Z", "detected_at": "2026-11-24T09:15:03Z",
        "feature": "tokens_per_request", "observed": 250000.0, "expected": 1300.0,
        "event_ids": ["e1"], "explanation": "One request used 250,000 tokens.",
        "config_version": "abc123",
    }


@pytest.mark.parametrize("score", [0.0, 0.5, 1.0])
def test_score_inside_unit_interval_is_accepted(alert: dict[str, Any], score: float) -> None:
    alert["score"] = score
    assert AnomalyEvent.model_validate(alert).score == score


@pytest.mark.parametrize("score", [-0.01, 1.01, 7])
def test_score_outside_unit_interval_is_rejected(alert: dict[str, Any], score: float) -> None:
    alert["score"] = score
    with pytest.raises(ValidationError, match="score"):
        AnomalyEvent.model_validate(alert)


@pytest.mark.parametrize("severity", ["low", "medium", "high", "critical"])
def test_documented_severities_are_accepted(alert: dict[str, Any], severity: str) -> None:
    alert["severity"] = severity
    AnomalyEvent.model_validate(alert)


@pytest.mark.parametrize("severity", ["warning", "HIGH", ""])
def test_other_severities_are_rejected(alert: dict[str, Any], severity: str) -> None:
    alert["severity"] = severity
    with pytest.raises(ValidationError, match="severity"):
        AnomalyEvent.model_validate(alert)


def test_event_ids_are_bounded(alert: dict[str, Any]) -> None:
    alert["event_ids"] = [f"e{i}" for i in range(MAX_EVENT_IDS)]
    AnomalyEvent.model_validate(alert)
    alert["event_ids"].append("one-too-many")
    with pytest.raises(ValidationError, match="event_ids"):
        AnomalyEvent.model_validate(alert)


@pytest.mark.parametrize("field", ["event_time", "detected_at"])
def test_times_without_offset_are_rejected(alert: dict[str, Any], field: str) -> None:
    alert[field] = "2026-11-24T09:15:02"
    with pytest.raises(ValidationError, match=field):
        AnomalyEvent.model_validate(alert)


def test_alert_round_trips_through_json(alert: dict[str, Any]) -> None:
    event = AnomalyEvent.model_validate(alert)
    assert AnomalyEvent.model_validate_json(event.model_dump_json()) == event


def test_documented_kinds_include_the_three_detectors() -> None:
    assert {"spike", "drift", "rate"} <= {kind.value for kind in AnomalyKind}


def test_the_readme_describes_every_declared_kind() -> None:
    from pathlib import Path

    from tokenradar.schemas.kinds import declared_kinds

    readme = (Path(__file__).parents[3] / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `") for line in readme.splitlines()
            if line.startswith("| `")}
    missing = [kind.name for kind in declared_kinds() if kind.name not in rows]
    assert not missing, f"README's table of kinds lacks {missing}"
