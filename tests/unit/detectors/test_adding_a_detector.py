"""Adding a detector is one module and one declaration: the configuration, the enum,
the engine, the evaluation and the report all pick it up with no other edit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from echo_detector import ECHO, EchoConfig
from pydantic import ValidationError

import tokenradar.schemas
from tokenradar.detectors import ScoringEngine
from tokenradar.lab.evaluate import IncidentLabel, evaluate
from tokenradar.lab.report import KIND_PALETTE, ReportBuilder
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent
from tokenradar.schemas import kinds as kinds_module
from tokenradar.schemas.kinds import declare, declared_kinds

START = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture
def echo_declared(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Declare the echo detector for one test; the other tests never see it."""
    monkeypatch.setattr(kinds_module, "_DECLARED", dict(kinds_module._DECLARED))
    declare(ECHO)
    yield


def _requests(sizes: list[int]) -> list[TokenUsageEvent]:
    return [TokenUsageEvent(event_id=f"e{i}", user_id="ana", model="m", input_tokens=size,
                            output_tokens=100, timestamp=START + timedelta(minutes=9 * i))
            for i, size in enumerate(sizes)]


def _echo_alerts() -> list[AnomalyEvent]:
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    return [alert for event in _requests([900, 950, 4242, 1000])
            for alert in engine.score_event(state, event, event.timestamp).alerts]


def test_without_its_declaration_the_detector_is_nowhere() -> None:
    assert "echo" not in DetectorConfig.model_json_schema()["properties"]
    assert "echo" not in {kind.value for kind in tokenradar.schemas.AnomalyKind}
    with pytest.raises(ValidationError, match="echo"):
        DetectorConfig.model_validate({"echo": {"size": 7}})
    assert _echo_alerts() == []


@pytest.mark.usefixtures("echo_declared")
def test_a_declared_detector_has_its_configuration_section() -> None:
    assert "echo" in DetectorConfig.model_json_schema()["properties"]
    assert DetectorConfig().section(ECHO) == EchoConfig()
    assert DetectorConfig.model_validate({"echo": {"size": 7}}).section(ECHO).size == 7
    with pytest.raises(ValidationError) as error:
        DetectorConfig.model_validate({"echo": {"size": 0}})
    assert [problem["loc"] for problem in error.value.errors()] == [("echo", "size")]
    # and a team may override it, as any detector's
    config = DetectorConfig.model_validate({"teams": {"web": {"echo": {"size": 9}}}})
    assert config.for_team("web").section(ECHO).size == 9


@pytest.mark.usefixtures("echo_declared")
def test_a_declared_detector_is_in_the_enum_and_the_engine() -> None:
    assert tokenradar.schemas.AnomalyKind("echo") == "echo"
    assert [kind.name for kind in declared_kinds()][-1] == "echo"
    (alert,) = _echo_alerts()
    assert (alert.kind, alert.detector, alert.event_ids) == ("echo", "echo", ["e2"])


@pytest.mark.usefixtures("echo_declared")
def test_a_declared_detector_is_evaluated_and_reported() -> None:
    alerts = _echo_alerts()
    label = IncidentLabel("i1", "echo", "ana", None, START, START + timedelta(hours=1))
    evaluation = evaluate([label], alerts, active_user_days=10)
    assert [(f.kind, f.detected) for f in evaluation.by_kind] == [("echo", 1)]
    assert [(f.kind, f.matched) for f in evaluation.alerts_by_kind] == [("echo", 1)]

    report = ReportBuilder(alert_threshold=0.6, config_version="test")
    for event in _requests([900, 950, 4242, 1000]):
        report.observe(event, 0.1, [a for a in alerts if a.event_time == event.timestamp],
                       None)
    page = report.render(evaluation)
    echo_colour = KIND_PALETTE[[kind.name for kind in declared_kinds()].index("echo")]
    assert "echo 1" in page and "echo alert" in page and echo_colour in page
