"""Rate: requests arrive far faster than this user's norm.

Counts requests in short windows (``window_minutes``) and compares the running
window with the user's baseline of log10 requests per active window. Catches
loops and runaway scripts within minutes, even when each request is small.
"""

from __future__ import annotations

import math

from msgspec import field

from tokenradar.detectors.base import Detector, Finding, Observation, Slot
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.calibration import tail_score
from tokenradar.schemas.config import RateConfig
from tokenradar.schemas.kinds import RATE

MIN_LOG_STD = 0.15


class RateSlot(Slot):
    per_window: EWStats = field(default_factory=EWStats)
    """log10 requests of the user's closed active windows."""


class RateDetector(Detector):
    """Scores the running window's request count against the user's usual rate.

    Parameters
    ----------
    config
        Window length, warm-up and floors; see :class:`tokenradar.schemas.config.RateConfig`.
    """

    declaration = RATE
    slot_type = RateSlot
    config: RateConfig

    def __init__(self, config: RateConfig) -> None:
        self.config = config

    def observe(self, slot: RateSlot, observation: Observation) -> Finding | None:
        config = self.config
        baseline = slot.per_window
        finding = None
        requests = observation.window_requests
        if baseline.count >= config.min_history_windows and requests >= config.min_requests:
            expected = 10.0 ** baseline.mean
            if requests >= config.min_ratio * expected:
                finding = Finding(
                    score=tail_score(baseline.z(math.log10(requests + 1), MIN_LOG_STD)),
                    feature="requests_per_window", observed=requests, expected=expected,
                    explanation=(
                        f"{requests} requests in {config.window_minutes} minutes, "
                        f"{requests / expected:.1f}x this user's usual {expected:.1f} "
                        "in an active window."
                    ),
                )
        if observation.closed_window is not None:
            closed = math.log10(observation.closed_window.requests + 1)
            if self.kind in observation.accepted:  # a person said this rate is normal
                baseline.update(closed, config.fading_factor)
            else:
                baseline.update_clipped(closed, MIN_LOG_STD, config.fading_factor)
        return finding
