"""Alerts the engine emits: one per incident, deterministic ids, valid and well-banded."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from conftest import EventLists, FixedScore

from tokenradar.detectors import ScoringEngine
from tokenradar.schemas import AnomalyEvent, DetectorConfig, TokenUsageEvent


def _two_incidents(event_lists: EventLists, gap_hours: int) -> list[TokenUsageEvent]:
    """Steady usage; an hour of huge requests; ``gap_hours`` steady; another such hour."""
    rng = random.Random(21)
    events = event_lists.steady(rng, hours=40)
    for incident in range(2):
        start = events[-1].timestamp + timedelta(minutes=5)
        events += event_lists.burst(12, start, every_seconds=300, tokens=250_000,
                                    first=100_000 * (incident + 1))
        events += event_lists.steady(rng, hours=gap_hours, start=events[-1].timestamp,
                                     first=len(events))
    return events


def _spikes(config: DetectorConfig, event_lists: EventLists,
            events: list[TokenUsageEvent]) -> list[AnomalyEvent]:
    return [alert for result in event_lists.score_all(ScoringEngine(config), events)
            for alert in result.alerts if alert.kind == "spike"]


def _incidents(alerts: list[AnomalyEvent]) -> list[AnomalyEvent]:
    """Each incident's first alert: an incident's first huge request alerts, and its hour
    re-publishes the alert, same id, as it worsens."""
    first: dict[str, AnomalyEvent] = {}
    for alert in alerts:
        first.setdefault(alert.alert_id, alert)
    return list(first.values())


def test_one_incident_gives_one_alert_per_user_and_kind(event_lists: EventLists) -> None:
    events = _two_incidents(event_lists, gap_hours=8)
    config = DetectorConfig.model_validate({"scoring": {"cooldown_minutes": 100_000}})
    assert len(_incidents(_spikes(config, event_lists, events))) == 1


def test_a_new_incident_after_the_quiet_time_alerts_again(event_lists: EventLists) -> None:
    events = _two_incidents(event_lists, gap_hours=8)
    # Huge inputs with small outputs also read as padding, and an open gaming incident
    # rightly folds spikes into it: this test is about the spike's own quiet time.
    config = DetectorConfig.model_validate({"gaming": {"enabled": False}})
    first, second = _incidents(_spikes(config, event_lists, events))
    quiet = timedelta(minutes=config.scoring.cooldown_minutes)
    assert second.event_time >= first.event_time + quiet
    assert second.alert_id != first.alert_id


def test_cooldown_is_per_kind_not_per_user(event_lists: EventLists) -> None:
    rng = random.Random(22)
    events = event_lists.steady(rng, hours=40, tokens=500)
    loop_start = events[-1].timestamp + timedelta(minutes=11)
    events += event_lists.burst(100, loop_start, every_seconds=5, tokens=300)
    # One incident of each kind (an alert may be re-published, same id, as it grows).
    incidents = {(alert.kind, alert.alert_id) for result in
                 event_lists.score_all(ScoringEngine(DetectorConfig()), events)
                 for alert in result.alerts}
    assert sorted(kind for kind, _ in incidents) == ["rate", "spike"]


def test_alert_ids_are_deterministic_across_engines(event_lists: EventLists) -> None:
    events = _two_incidents(event_lists, gap_hours=8)
    first = _spikes(DetectorConfig(), event_lists, events)
    second = _spikes(DetectorConfig(), event_lists, events)
    assert first and [a.alert_id for a in first] == [a.alert_id for a in second]
    assert len(_incidents(first)) == 2


def test_alert_ids_change_when_the_config_changes(event_lists: EventLists) -> None:
    events = _two_incidents(event_lists, gap_hours=8)
    default = _spikes(DetectorConfig(), event_lists, events)
    tuned_config = DetectorConfig.model_validate({"spike": {"min_tokens": 19_999}})
    tuned = _spikes(tuned_config, event_lists, events)
    assert [a.event_time for a in tuned] == [a.event_time for a in default]
    assert not {a.alert_id for a in tuned} & {a.alert_id for a in default}
    assert {a.config_version for a in tuned} == {tuned_config.version}


def _hostile_events(event_lists: EventLists, seed: int) -> list[TokenUsageEvent]:
    """Tokens over nine orders of magnitude, bursts, long gaps and out-of-order times."""
    rng = random.Random(seed)
    events, at = [], event_lists.start
    for number in range(3000):
        at += timedelta(seconds=rng.choice([1, 5, 60, 600, 3600, 86_400, -300]))
        tokens = int(10 ** rng.uniform(0, 9)) if rng.random() < 0.2 else rng.randint(500, 3000)
        events.append(event_lists.event(number, at, tokens))
    return events


@pytest.mark.parametrize("seed", range(3))
def test_scores_stay_in_unit_interval_and_alerts_are_valid(
        event_lists: EventLists, seed: int) -> None:
    config = DetectorConfig()
    results = event_lists.score_all(ScoringEngine(config), _hostile_events(event_lists, seed))
    assert all(0.0 <= result.score <= 1.0 for result in results)
    alerts = [alert for result in results for alert in result.alerts]
    assert alerts, "the hostile stream should raise some alerts"
    for alert in alerts:
        assert AnomalyEvent.model_validate_json(alert.model_dump_json()) == alert
        assert alert.score >= config.scoring.alert_threshold
        assert alert.severity == config.severity_of(alert.score)
        assert alert.config_version == config.version
        assert alert.user_id == "ana" and alert.team == "core"


@pytest.mark.parametrize("score", [
    0.7, 0.9, 0.96,
    0.849996,
])
def test_published_severity_matches_published_score(
        event_lists: EventLists, score: float) -> None:
    config = DetectorConfig()
    engine = ScoringEngine(config)
    engine.detectors = [FixedScore(score)]
    event = event_lists.event(1, event_lists.start, 1000)
    (alert,) = engine.score_event(engine.new_state("ana"), event, event.timestamp).alerts
    assert alert.severity == config.severity_of(alert.score)
