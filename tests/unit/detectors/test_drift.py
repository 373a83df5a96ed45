"""Drift's Page-Hinkley test: River's numbers, in a record of four."""

from __future__ import annotations

import random

import pytest
from river import drift

from tokenradar.detectors.drift import PageHinkley


@pytest.mark.parametrize("seed", range(5))
def test_page_hinkley_gives_rivers_numbers_and_verdicts(seed: int) -> None:
    """A level that steps up, then stays: every update's sums and verdict are River's,
    through its detections and the fresh test after each (as the detector does)."""
    rng = random.Random(seed)
    levels = ([rng.gauss(3.0, 0.1) for _ in range(60)] + [rng.gauss(3.6, 0.1) for _ in range(40)]
              + [rng.gauss(4.2, 0.2) for _ in range(60)])
    parameters = {"min_instances": 12, "delta": 0.005, "threshold": 1.0}
    ours, rivers = PageHinkley(), drift.PageHinkley(mode="up", **parameters)
    detections = 0
    for level in levels:
        detected = ours.update(level, **parameters)
        rivers.update(level)
        assert (ours.count, ours.mean, ours.sum_increase, ours.min_increase) == (
            rivers._x_mean.n, rivers._x_mean.get(), rivers._sum_increase,
            rivers._min_increase)
        assert detected == rivers.drift_detected
        if detected:
            detections += 1
            ours, rivers = PageHinkley(), drift.PageHinkley(mode="up", **parameters)
    assert detections >= 2
