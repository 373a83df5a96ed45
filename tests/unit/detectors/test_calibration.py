"""tail_score: one scale for every detector, -log10(upper tail probability) / 10 in [0, 1]."""

from __future__ import annotations

import pytest

from tokenradar.detectors.calibration import tail_score

GRID = [z / 10 for z in range(-120, 800)]


def test_tail_score_never_decreases_as_z_grows() -> None:
    scores = [tail_score(z) for z in GRID]
    assert all(a <= b for a, b in zip(scores, scores[1:], strict=False))


def test_tail_score_stays_in_unit_interval() -> None:
    assert all(0.0 <= tail_score(z) <= 1.0 for z in [*GRID, -1e9, 1e9])


@pytest.mark.parametrize(("z", "one_in"), [
    (1.2816, 10),          # standard normal quantiles of 1 - 1/one_in
    (3.0902, 1_000),
    (4.7534, 1_000_000),
])
def test_score_means_the_same_rarity_for_every_detector(z: float, one_in: int) -> None:
    decades = len(str(one_in)) - 1
    assert tail_score(z) == pytest.approx(decades / 10, abs=1e-3)


def test_far_below_the_mean_scores_zero_and_far_above_scores_one() -> None:
    assert tail_score(-8.0) == 0.0
    assert tail_score(-100.0) == 0.0
    assert tail_score(40.0) == 1.0
