"""Scripted loop: near-identical requests at machine-regular intervals.

People are bursty: the gaps between their requests vary widely. A script sends
the same few prompts with the same gap, for hours. Counts consecutive gaps within
``max_jitter`` of the running period; each one a person would rarely produce. A
gap of two or three periods (a beat missed, or its request delivered late) keeps the
run without counting, and a request that arrives after a later one is left out:
events from several producers do not reach Kafka in perfect order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.base import Detector, Finding, Observation
from detectors.baseline import EWStats
from detectors.calibration import SCORE_DECADES
from schemas import AnomalyKind
from schemas.config import ScriptedLoopConfig

PERIOD_FADING = 0.2
TOKENS_FADING = 0.1
HUMAN_REGULAR_GAP_PROBABILITY = 0.25
"""Generous chance that a person's next gap lands within the jitter of the last ones."""
MIN_PERIOD_SECONDS = 1.0
NEAR_CONSTANT_LOG_STD = 0.05
MAX_BEATS_PER_GAP = 3
"""A gap of two or three periods is a beat missed (or arrived late), not the end of a
loop: it keeps the run, uncounted."""


@dataclass(slots=True)
class LoopSlot:
    period: EWStats
    tokens: EWStats
    regular_in_a_row: int = 0
    loop_start: float = 0.0

    def to_list(self) -> list[float]:
        return [*self.period.to_list(), *self.tokens.to_list(), self.regular_in_a_row,
                self.loop_start]


class ScriptedLoopDetector(Detector):
    """Finds runs of machine-regular request gaps with repeated prompts.

    Parameters
    ----------
    config
        Run length, jitter and period bounds; see :class:`schemas.config.ScriptedLoopConfig`.
    """

    name = "scripted_loop"
    kind = AnomalyKind.SCRIPTED_LOOP
    config: ScriptedLoopConfig

    def __init__(self, config: ScriptedLoopConfig) -> None:
        self.config = config

    def new_slot(self) -> LoopSlot:
        return LoopSlot(EWStats(PERIOD_FADING), EWStats(TOKENS_FADING))

    def restore(self, values: list[float]) -> LoopSlot:
        return LoopSlot(EWStats.from_list(PERIOD_FADING, values[0:3]),
                        EWStats.from_list(TOKENS_FADING, values[3:6]), int(values[6]),
                        values[7])

    def observe(self, slot: LoopSlot, observation: Observation) -> Finding | None:
        config = self.config
        gap = observation.gap
        slot.tokens.update(math.log10(observation.tokens + 1))
        if gap is not None and gap < 0:
            # Arrived after a later request (producers on several hosts): its place in
            # the rhythm is unknown, so it neither extends nor breaks the run.
            return None
        if gap is None or gap > config.max_period_seconds:
            slot.period = EWStats(PERIOD_FADING)
            slot.regular_in_a_row = 0
            return None
        period = slot.period.mean
        beats = round(gap / period) if slot.period.count and period >= MIN_PERIOD_SECONDS else 0
        on_beat = (1 <= beats <= MAX_BEATS_PER_GAP
                   and abs(gap - beats * period) <= config.max_jitter * period)
        if on_beat and beats == 1:
            slot.regular_in_a_row += 1
            slot.period.update(gap)
        elif not on_beat:
            slot.regular_in_a_row = 0
            slot.loop_start = observation.time
            slot.period = EWStats(PERIOD_FADING)
            slot.period.update(gap)
        # A gap of a few whole periods (a beat missed, or its request arrived late) keeps
        # the run without counting in it.

        if slot.regular_in_a_row < config.min_regular_requests:
            return None
        near_constant = slot.tokens.std <= NEAR_CONSTANT_LOG_STD
        if observation.repeat_share < config.min_repeat_share and not near_constant:
            return None
        decades = -math.log10(HUMAN_REGULAR_GAP_PROBABILITY) * slot.regular_in_a_row
        minutes = (observation.time - slot.loop_start) / 60.0
        return Finding(
            score=min(1.0, decades / SCORE_DECADES), feature="regular_request_gaps",
            observed=slot.regular_in_a_row, expected=0.0,
            explanation=(
                f"{slot.regular_in_a_row} requests in a row at a regular {period:.1f} s "
                f"interval (within {config.max_jitter:.0%}) for {minutes:.0f} min, "
                f"{observation.repeat_share:.0%} of prompts repeated: looks scripted."
            ),
        )
