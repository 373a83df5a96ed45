"""Renormalisation: thresholds follow the team's own days; a noisy identity is summarised."""

from __future__ import annotations

import random
from datetime import timedelta

import msgspec
from conftest import EventLists, FixedScore

from tokenradar.detectors import ScoringEngine, TeamState
from tokenradar.detectors.renormalisation import DailyMaxima
from tokenradar.schemas import AnomalyEvent, DetectorConfig


def _sketch(decay: float, days: int, seed: int = 3) -> DailyMaxima:
    """User-days whose highest score falls off exponentially at ``decay`` per unit score."""
    rng = random.Random(seed)
    sketch = DailyMaxima()
    for _ in range(days):
        sketch.add("spike", min(1.0, rng.expovariate(decay)))
    return sketch


def _threshold(sketch: DailyMaxima, budget: float = 0.05) -> float:
    return sketch.threshold("spike", 0.6, budget, min_days=100, tail_days=20)


def test_a_team_whose_ordinary_days_score_high_gets_a_higher_threshold() -> None:
    assert _threshold(_sketch(decay=25.0, days=500)) == 0.6
    assert 0.6 < _threshold(_sketch(decay=12.0, days=500)) < _threshold(_sketch(8.0, 500))


def test_a_smaller_budget_raises_the_threshold() -> None:
    sketch = _sketch(decay=12.0, days=500)
    assert _threshold(sketch, budget=0.01) > _threshold(sketch, budget=1.0)


def test_a_young_sketch_keeps_the_configured_threshold() -> None:
    assert _threshold(_sketch(decay=5.0, days=99)) == 0.6
    assert _threshold(_sketch(decay=5.0, days=100)) > 0.6


def test_the_threshold_never_passes_its_ceiling_so_overwhelming_evidence_still_alerts(
        ) -> None:
    sketch = DailyMaxima()
    for _ in range(300):
        sketch.add("spike", 1.0)
    assert _threshold(sketch) == 1.0
    assert sketch.threshold("spike", 0.6, 0.05, min_days=100, tail_days=20,
                            ceiling=0.9) == 0.9
    # ...but never below the configured threshold.
    assert sketch.threshold("spike", 0.95, 0.05, min_days=100, tail_days=20,
                            ceiling=0.9) == 0.95


def test_a_few_incident_days_far_out_do_not_lift_the_threshold_above_themselves() -> None:
    # A team of ordinary days, and the same with three real incidents at 0.95 (as many
    # as a quarter's spikes): the sketch cannot tell them apart, but they must not set
    # the threshold past themselves, or calibration would budget the incidents away.
    for decay in (12.0, 15.0):
        with_incidents = _sketch(decay=decay, days=300)
        for _ in range(3):
            with_incidents.add("spike", 0.95)
        assert _threshold(with_incidents) < 0.9  # the incidents, at 0.95, still alert


def test_sketches_merge_and_survive_the_codec() -> None:
    first, second = _sketch(10.0, 200, seed=1), _sketch(10.0, 300, seed=2)
    restored = msgspec.msgpack.decode(msgspec.msgpack.encode(first), type=DailyMaxima)
    assert restored == first
    restored.merge(second)
    assert restored.days("spike") == 500
    assert restored.counts["spike"] == {
        index: first.counts["spike"].get(index, 0) + second.counts["spike"].get(index, 0)
        for index in first.counts["spike"].keys() | second.counts["spike"].keys()}


def test_team_state_keeps_its_sketch_through_the_codec() -> None:
    team = TeamState(team="core")
    team.maxima = _sketch(10.0, 150)
    assert TeamState.from_bytes(team.to_bytes()).maxima == team.maxima


def _alerts_by_week(config: DetectorConfig, event_lists: EventLists) -> list[int]:
    """Alerts of a team of eight on which a detector finds 0.7 every day, per week."""
    engine = ScoringEngine(config)
    engine.detectors = [FixedScore(0.7)]
    events = event_lists.team_days(members=8, days=42)
    weeks = [0] * 6
    for result, event in zip(event_lists.score_people(engine, events),
                             sorted(events, key=lambda e: e.timestamp), strict=True):
        weeks[(event.timestamp - event_lists.start).days // 7] += len(result.alerts)
    return weeks


def test_a_detector_that_fires_on_every_ordinary_day_is_quieted_by_the_team_days(
        event_lists: EventLists) -> None:
    quiet_identities = {"noisy_identity": {"enabled": False}}
    calibrated = _alerts_by_week(DetectorConfig.model_validate(quiet_identities), event_lists)
    fixed = _alerts_by_week(DetectorConfig.model_validate(
        {**quiet_identities, "calibration": {"enabled": False}}), event_lists)
    # Eight members, five working days, one alert per member and 4-hour quiet time: the
    # fixed threshold alerts every day of every week; calibrated, once the team has 100
    # user-days (week 3), 0.7 is what an ordinary day reaches here, and it stops.
    assert all(week >= 40 for week in fixed)
    assert calibrated[:2] == fixed[:2]
    assert sum(calibrated[3:]) == 0


def test_an_identity_past_its_alerts_budget_raises_one_summary(
        event_lists: EventLists) -> None:
    config = DetectorConfig.model_validate(
        {"calibration": {"enabled": False}, "noisy_identity": {"max_alerts": 3}})
    engine = ScoringEngine(config)
    engine.detectors = [FixedScore(0.7)]
    state = engine.new_state("svc-batch")
    alerts: list[AnomalyEvent] = []
    for day in range(20):  # an alert a day for twenty days, as a machine account might
        at = event_lists.start + timedelta(days=day)
        alerts += engine.score_event(state, event_lists.event(day, at, 1000, user="svc-batch"),
                                     at).alerts
    kinds = [alert.kind for alert in alerts]
    assert kinds == ["spike", "spike", "spike", "noisy_identity"]
    summary = alerts[-1]
    assert summary.observed == 4 and summary.expected == 3
    assert "3 spike" in summary.explanation and "allowlist" in summary.explanation


def test_a_noisy_identity_alerts_again_once_its_window_has_passed(
        event_lists: EventLists) -> None:
    config = DetectorConfig.model_validate(
        {"calibration": {"enabled": False},
         "noisy_identity": {"max_alerts": 2, "window_days": 5}})
    engine = ScoringEngine(config)
    engine.detectors = [FixedScore(0.7)]
    state = engine.new_state("ana")
    kinds = []
    for day in range(12):
        at = event_lists.start + timedelta(days=day)
        kinds += [alert.kind for alert in
                  engine.score_event(state, event_lists.event(day, at, 1000), at).alerts]
    # days 0-1 alert, day 2 summarises and holds days 2-6; day 7 starts afresh
    assert kinds == ["spike", "spike", "noisy_identity", "spike", "spike", "noisy_identity"]
