"""One check suite over every registered detector (after River's ``checks``)."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from conftest import EventLists

from tokenradar.detectors import ScoringEngine
from tokenradar.detectors.base import Detector
from tokenradar.schemas import AnomalyKind, DetectorConfig

DETECTORS = ScoringEngine(DetectorConfig()).detectors


def _by_name(detector: Detector) -> str:
    return detector.name


def _trained_slot(detector: Detector, event_lists: EventLists) -> object:
    """The detector's slot of a user after a varied history, taken from a real engine."""
    rng = random.Random(31)
    events = event_lists.steady(rng, hours=50)
    events += event_lists.burst(80, events[-1].timestamp + timedelta(minutes=20), 5, 50_000)
    engine = ScoringEngine(DetectorConfig())
    state = engine.new_state("ana")
    event_lists.score_all(engine, events, state)
    return state.slots[detector.name]


def test_the_three_core_detectors_are_registered_under_unique_names() -> None:
    names = [d.name for d in DETECTORS]
    assert {"drift", "rate", "spike"} <= set(names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("detector", DETECTORS, ids=_by_name)
def test_new_slot_round_trips_through_restore(detector: Detector) -> None:
    values = detector.new_slot().to_list()
    assert detector.restore(values).to_list() == values


@pytest.mark.parametrize("detector", DETECTORS, ids=_by_name)
def test_trained_slot_round_trips_through_json_and_restore(
        detector: Detector, event_lists: EventLists) -> None:
    values = _trained_slot(detector, event_lists).to_list()  # type: ignore[attr-defined]
    decoded = json.loads(json.dumps(values))
    assert detector.restore(decoded).to_list() == values


@pytest.mark.parametrize("detector", DETECTORS, ids=_by_name)
def test_slot_list_is_strict_json(detector: Detector, event_lists: EventLists) -> None:
    for slot in (_trained_slot(detector, event_lists), detector.new_slot()):
        values = slot.to_list()  # type: ignore[attr-defined]
        assert isinstance(values, list)
        json.dumps(values, allow_nan=False)


@pytest.mark.parametrize("detector", DETECTORS, ids=_by_name)
def test_observe_never_scores_outside_unit_interval(
        detector: Detector, event_lists: EventLists) -> None:
    rng = random.Random(32)
    events = event_lists.steady(rng, hours=30)
    at = events[-1].timestamp
    # Bursts of requests of any size, hours apart: every detector gets to score.
    for burst in range(40):
        at += timedelta(seconds=rng.choice([600, 3600, 7200]))
        for number in range(rng.choice([5, 60])):
            at += timedelta(seconds=3)
            events.append(event_lists.event(10_000 + 100 * burst + number, at,
                                            int(10 ** rng.uniform(0, 9))))
    engine = ScoringEngine(DetectorConfig())
    engine.detectors = [detector]
    results = event_lists.score_all(engine, events)
    assert all(0.0 <= result.score <= 1.0 for result in results)
    if detector.name in ("spike", "rate", "drift"):
        # These read every stream; the behaviour detectors score only their own
        # patterns, which their own tests build.
        assert any(result.score > 0 for result in results)
    assert all(0.0 <= result.score <= 1.0 for result in results)


@pytest.mark.parametrize("detector", DETECTORS, ids=_by_name)
def test_detector_is_documented_and_names_a_documented_kind(detector: Detector) -> None:
    assert type(detector).__doc__ and type(detector).__doc__.strip()
    assert detector.kind in {kind.value for kind in AnomalyKind}
    assert detector.name


@pytest.mark.parametrize("stored", [13, 14, 15])
def test_a_gaming_slot_stored_before_its_newer_counters_restores_them_at_zero(
        stored: int, event_lists: EventLists) -> None:
    (gaming,) = [d for d in DETECTORS if d.name == "gaming"]
    values = _trained_slot(gaming, event_lists).to_list()  # type: ignore[attr-defined]
    restored = gaming.restore(values[:stored]).to_list()  # type: ignore[attr-defined]
    assert restored == values[:stored] + [0] * (len(values) - stored)


def test_a_loop_slot_stored_before_the_run_kept_its_own_clock_starts_the_run_afresh(
        event_lists: EventLists) -> None:
    (loop,) = [d for d in DETECTORS if d.name == "scripted_loop"]
    values = _trained_slot(loop, event_lists).to_list()  # type: ignore[attr-defined]
    stored = values[:6] + [12, values[7]]  # then: 12 regular gaps in a row, and its start
    restored = loop.restore(stored)  # type: ignore[attr-defined]
    assert restored.tokens.to_list() == values[3:6]
    assert (restored.regular_in_a_row, restored.decades, restored.last_time) == (0, 0.0, -1.0)
