"""Creep: the level rising a few percent per working day, for weeks.

Each closed active day (its tokens per active hour) is standardised against a
reference level that stops learning while the evidence of a rise accumulates (a
CUSUM), so a slow climb is not absorbed into the baseline before it is noticed.
While the member's whole team moves, the rise is learned instead: a team ramping
together is one population shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.base import Detector, Finding, Observation
from detectors.baseline import EWStats
from detectors.calibration import decades_score, normal_tail_decades
from schemas import AnomalyKind
from schemas.config import CreepConfig

REFERENCE_FADING = 0.1
RECENT_FADING = 0.4
MIN_LOG_STD = 0.05
MAX_DAY_Z = 2.0
RELEARN_AFTER = 3.0


@dataclass(slots=True)
class CreepSlot:
    reference: EWStats
    recent: EWStats
    cusum: float = 0.0
    rising_days: int = 0
    evidence: float = 0.0
    """Surprise (decades) of the rising days so far, each against the reference."""

    def to_list(self) -> list[float]:
        return [*self.reference.to_list(), *self.recent.to_list(), self.cusum,
                self.rising_days, self.evidence]


class CreepDetector(Detector):
    """Finds a sustained, gradual rise of tokens per active day (CUSUM).

    Parameters
    ----------
    config
        Warm-up, CUSUM allowance and decision interval; see
        :class:`schemas.config.CreepConfig`.
    """

    name = "creep"
    kind = AnomalyKind.CREEP
    config: CreepConfig

    def __init__(self, config: CreepConfig) -> None:
        self.config = config

    def new_slot(self) -> CreepSlot:
        return CreepSlot(EWStats(REFERENCE_FADING), EWStats(RECENT_FADING))

    def restore(self, values: list[float]) -> CreepSlot:
        return CreepSlot(EWStats.from_list(REFERENCE_FADING, values[0:3]),
                         EWStats.from_list(RECENT_FADING, values[3:6]), values[6],
                         int(values[7]), values[8])

    def observe(self, slot: CreepSlot, observation: Observation) -> Finding | None:
        day = observation.closed_day
        if day is None:
            return None
        config = self.config
        # Per active hour: a short day (a late start, an early leave) is not a drop.
        level = math.log10(day.tokens / day.active_hours + 1)
        slot.recent.update(level)
        reference = slot.reference
        if reference.count < config.min_history_days or observation.team_shift > 0:
            # While the whole team moves, what this member does with it is the team's
            # new normal, learned rather than tested: one population shift, not N creeps.
            reference.update(level)
            slot.cusum, slot.rising_days, slot.evidence = 0.0, 0, 0.0
            return None
        # One extraordinary day (a spike, a loop) is not a creep: each day counts at most
        # MAX_DAY_Z, so it takes several days of rise to reach the threshold.
        z = min(MAX_DAY_Z, (level - reference.mean) / max(reference.std, MIN_LOG_STD))
        slot.cusum = max(0.0, slot.cusum + z - config.slack)
        if slot.cusum == 0.0:
            slot.rising_days, slot.evidence = 0, 0.0
            reference.update(level)
            return None
        slot.rising_days += 1
        slot.evidence += normal_tail_decades(z)
        ratio = 10.0 ** (slot.recent.mean - reference.mean)
        if slot.cusum < config.threshold or ratio < config.min_ratio:
            return None
        old = 10.0 ** reference.mean
        finding = Finding(
            score=decades_score(slot.evidence),
            feature="tokens_per_active_hour_by_day", observed=old * ratio, expected=old,
            explanation=(
                f"Usage has risen day after day for {slot.rising_days} active days to "
                f"{old * ratio:,.0f} tokens per active hour, {ratio:.2f}x this user's "
                f"earlier {old:,.0f}, while their team did not move."
            ),
        )
        if slot.cusum >= RELEARN_AFTER * config.threshold:
            # Long confirmed (and reported, the cooldown holds repeats back): re-learn
            # from the new level rather than stay surprised by it forever.
            slot.reference = EWStats(REFERENCE_FADING, reference.count, slot.recent.mean,
                                     reference.var)
            slot.cusum, slot.rising_days, slot.evidence = 0.0, 0, 0.0
        return finding
