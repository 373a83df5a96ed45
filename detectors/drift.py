"""Drift: the user's level of usage has moved up and stayed there.

River's PageHinkley test watches log10 tokens per active hour. When it signals,
the new level (a fast fading mean) is compared with the old baseline; a rise of at
least ``min_ratio`` is an alert. Either way the baseline then re-learns from the new
level, so a confirmed change is reported once, not forever (river#948).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from river import drift

from tokenradar.detectors.base import Detector, Finding, Observation
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.calibration import tail_score
from tokenradar.schemas.config import DriftConfig
from tokenradar.schemas.kinds import DRIFT

BASELINE_FADING = 0.02
"""The old level: remembers the last ~50-100 active hours."""
RECENT_FADING = 0.2
"""The new level: remembers the last ~5-10 active hours."""
MIN_LOG_STD = 0.1
UNSET = 1e300


@dataclass(slots=True)
class DriftSlot:
    baseline: EWStats
    recent: EWStats
    test: drift.PageHinkley

    def to_list(self) -> list[float]:
        test = self.test
        return [
            *self.baseline.to_list(), *self.recent.to_list(),
            test._x_mean.n, test._x_mean._mean, test._sum_increase, test._sum_decrease,
            # A fresh test starts at +inf, which JSON cannot hold; any real sum is below.
            min(test._min_increase, UNSET), test._max_decrease,
        ]


class DriftDetector(Detector):
    """Finds sustained rises of a user's hourly usage with River's PageHinkley.

    Parameters
    ----------
    config
        PageHinkley's threshold and tolerance, warm-up and minimum rise; see
        :class:`tokenradar.schemas.config.DriftConfig`.
    """

    declaration = DRIFT
    config: DriftConfig

    def __init__(self, config: DriftConfig) -> None:
        self.config = config

    def _new_test(self) -> drift.PageHinkley:
        return drift.PageHinkley(min_instances=self.config.min_history_hours // 2,
                                 delta=self.config.delta, threshold=self.config.threshold,
                                 mode="up")

    def new_slot(self) -> DriftSlot:
        return DriftSlot(EWStats(BASELINE_FADING), EWStats(RECENT_FADING), self._new_test())

    def restore(self, values: list[float]) -> DriftSlot:
        slot = DriftSlot(EWStats.from_list(BASELINE_FADING, values[0:3]),
                         EWStats.from_list(RECENT_FADING, values[3:6]), self._new_test())
        test = slot.test
        n, mean, sum_increase, sum_decrease, min_increase, max_decrease = values[6:12]
        test._x_mean.n, test._x_mean._mean = n, mean
        test._sum_increase, test._sum_decrease = sum_increase, sum_decrease
        test._min_increase = math.inf if min_increase >= UNSET else min_increase
        test._max_decrease = max_decrease  # type: ignore[assignment]
        return slot

    def observe(self, slot: DriftSlot, observation: Observation) -> Finding | None:
        closed = observation.closed_hour
        if closed is None:
            return None
        level = math.log10(closed.tokens + 1)
        slot.recent.update(level)
        if slot.baseline.count < self.config.min_history_hours or observation.team_shift > 0:
            # While the whole team moves, the member's level follows it: learned, not tested.
            slot.baseline.update(level)
            return None
        slot.test.update(level)  # type: ignore[no-untyped-call]  # River is untyped
        if not slot.test.drift_detected:
            slot.baseline.update(level)
            return None

        old, new = 10.0 ** slot.baseline.mean, 10.0 ** slot.recent.mean
        standard_error = max(slot.baseline.std, MIN_LOG_STD) * math.sqrt(
            RECENT_FADING / (2.0 - RECENT_FADING))
        score = tail_score((slot.recent.mean - slot.baseline.mean) / standard_error)
        # Re-learn from the new level: the change is confirmed, not a recurring surprise.
        slot.baseline = EWStats(BASELINE_FADING, slot.baseline.count, slot.recent.mean,
                                slot.baseline.var)
        slot.test = self._new_test()
        if new < self.config.min_ratio * old:
            return None
        return Finding(
            score=score, feature="tokens_per_active_hour", observed=new, expected=old,
            explanation=(
                f"Usage per active hour has risen to {new:,.0f} tokens, {new / old:.1f}x "
                f"this user's earlier level of {old:,.0f}, and has stayed there."
            ),
        )
