"""Drift: the user's level of usage has moved up and stayed there.

A Page-Hinkley test watches log10 tokens per active hour. When it signals,
the new level (a fast fading mean) is compared with the old baseline; a rise of at
least ``min_ratio`` is an alert. Either way the baseline then re-learns from the new
level, so a confirmed change is reported once, not forever (river#948).
"""

from __future__ import annotations

import math

from msgspec import field

from tokenradar.detectors.base import Detector, Finding, Observation, Slot
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.calibration import tail_score
from tokenradar.detectors.records import Record
from tokenradar.schemas.config import DriftConfig
from tokenradar.schemas.kinds import DRIFT

BASELINE_FADING = 0.02
"""The old level: remembers the last ~50-100 active hours."""
RECENT_FADING = 0.2
"""The new level: remembers the last ~5-10 active hours."""
MIN_LOG_STD = 0.1
FORGETTING = 1 - 0.0001
"""Page-Hinkley's forgetting factor of its cumulative sum (River's default)."""


class PageHinkley(Record):
    """The Page-Hinkley test for a rise of the mean: River's ``drift.PageHinkley`` with
    ``mode="up"``, the same recurrence in the same order, so the same numbers (a test
    checks it against River), as a stored record of its four numbers. Its parameters
    are the detector's, given at each update.

    >>> test = PageHinkley()
    >>> [test.update(x, min_instances=3, delta=0.005, threshold=1.0)
    ...  for x in (0.0, 0.1, 0.0, 0.1, 3.0, 3.0)]
    [False, False, False, False, True, True]
    """

    count: float = 0.0
    mean: float = 0.0
    """The running mean of the values seen (River's ``stats.Mean``)."""
    sum_increase: float = 0.0
    """The cumulative sum of deviations above the mean, less ``delta`` each, fading..."""
    min_increase: float = math.inf
    """...and its lowest value so far: the test is how far it has risen since."""

    def update(self, x: float, *, min_instances: int, delta: float, threshold: float) -> bool:
        """Learn ``x``; whether the mean has risen (once ``min_instances`` are seen)."""
        self.count += 1.0
        self.mean += (1.0 / self.count) * (x - self.mean)
        deviation = x - self.mean
        self.sum_increase = FORGETTING * self.sum_increase + deviation - delta
        self.min_increase = min(self.min_increase, self.sum_increase)
        return (self.count >= min_instances
                and self.sum_increase - self.min_increase > threshold)


class DriftSlot(Slot):
    baseline: EWStats = field(default_factory=EWStats)
    recent: EWStats = field(default_factory=EWStats)
    test: PageHinkley = field(default_factory=PageHinkley)


class DriftDetector(Detector):
    """Finds sustained rises of a user's hourly usage with a Page-Hinkley test.

    Parameters
    ----------
    config
        PageHinkley's threshold and tolerance, warm-up and minimum rise; see
        :class:`tokenradar.schemas.config.DriftConfig`.
    """

    declaration = DRIFT
    slot_type = DriftSlot
    config: DriftConfig

    def __init__(self, config: DriftConfig) -> None:
        self.config = config

    def observe(self, slot: DriftSlot, observation: Observation) -> Finding | None:
        closed = observation.closed_hour
        if closed is None:
            return None
        level = math.log10(closed.tokens + 1)
        config = self.config
        slot.recent.update(level, RECENT_FADING)
        if slot.baseline.count < config.min_history_hours or observation.team_shift > 0:
            # While the whole team moves, the member's level follows it: learned, not tested.
            slot.baseline.update(level, BASELINE_FADING)
            return None
        if not slot.test.update(level, min_instances=config.min_history_hours // 2,
                                delta=config.delta, threshold=config.threshold):
            slot.baseline.update(level, BASELINE_FADING)
            return None

        old, new = 10.0 ** slot.baseline.mean, 10.0 ** slot.recent.mean
        standard_error = max(slot.baseline.std, MIN_LOG_STD) * math.sqrt(
            RECENT_FADING / (2.0 - RECENT_FADING))
        score = tail_score((slot.recent.mean - slot.baseline.mean) / standard_error)
        # Re-learn from the new level: the change is confirmed, not a recurring surprise.
        slot.baseline = EWStats(slot.baseline.count, slot.recent.mean, slot.baseline.var)
        slot.test = PageHinkley()
        if new < config.min_ratio * old:
            return None
        return Finding(
            score=score, feature="tokens_per_active_hour", observed=new, expected=old,
            explanation=(
                f"Usage per active hour has risen to {new:,.0f} tokens, {new / old:.1f}x "
                f"this user's earlier level of {old:,.0f}, and has stayed there."
            ),
        )
