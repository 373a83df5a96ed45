"""One check suite over every registered detector (after River's ``checks``)."""

from __future__ import annotations

import random
from datetime import timedelta

import msgspec
import pytest
from conftest import EventLists

from tokenradar.detectors import ScoringEngine
from tokenradar.detectors.base import Detector
from tokenradar.detectors.records import record_bytes
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


def _stored(slot: object) -> object:
    """A slot as a user state holds it until the detector asks for it: plain values."""
    return msgspec.msgpack.decode(record_bytes(slot))


@pytest.mark.parametrize("detector", DETECTORS, ids=_by_name)
def test_new_slot_is_its_declared_record_and_round_trips_through_restore(
        detector: Detector) -> None:
    slot = detector.new_slot()
    assert type(slot) is detector.slot_type
    assert detector.restore(_stored(slot)) == slot


@pytest.mark.parametrize("detector", DETECTORS, ids=_by_name)
def test_trained_slot_round_trips_through_its_stored_form_bit_for_bit(
        detector: Detector, event_lists: EventLists) -> None:
    slot = _trained_slot(detector, event_lists)
    restored = detector.restore(_stored(slot))
    assert restored == slot
    # Equal bytes: every float as it was, to the bit and sign; every count still an int.
    assert record_bytes(restored) == record_bytes(slot)


@pytest.mark.parametrize("detector", DETECTORS, ids=_by_name)
def test_detector_is_documented_and_names_a_documented_kind(detector: Detector) -> None:
    assert type(detector).__doc__ and type(detector).__doc__.strip()
    assert detector.kind in {kind.value for kind in AnomalyKind}
    assert detector.name
