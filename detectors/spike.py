"""Spike: one request, or one hour, far above what this user normally uses.

Baselines are kept on log10 tokens, where token counts are roughly normal, so a
user who legitimately uses 100x more than another is judged by their own scale.
An hour is scored while it runs, so a spike is caught within the hour, not after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.base import Detector, Finding, Observation
from detectors.baseline import EWStats
from detectors.calibration import tail_score
from schemas import AnomalyKind
from schemas.config import SpikeConfig

MIN_LOG_STD = 0.1
"""Spread floor (log10): a very regular user still tolerates ~25% variation."""


@dataclass(slots=True)
class SpikeSlot:
    per_request: EWStats
    per_hour: EWStats

    def to_list(self) -> list[float]:
        return self.per_request.to_list() + self.per_hour.to_list()


class SpikeDetector(Detector):
    """Scores each request's tokens and the running hour's tokens against the user's history.

    Parameters
    ----------
    config
        Thresholds and warm-up lengths; see :class:`schemas.config.SpikeConfig`.
    """

    name = "spike"
    kind = AnomalyKind.SPIKE

    def __init__(self, config: SpikeConfig) -> None:
        self.config = config

    def new_slot(self) -> SpikeSlot:
        fading = self.config.fading_factor
        return SpikeSlot(EWStats(fading), EWStats(fading))

    def restore(self, values: list[float]) -> SpikeSlot:
        fading = self.config.fading_factor
        return SpikeSlot(EWStats.from_list(fading, values[:3]),
                         EWStats.from_list(fading, values[3:]))

    def observe(self, slot: SpikeSlot, observation: Observation) -> Finding | None:
        config = self.config
        request = _scored(slot.per_request, observation.tokens, config.min_history_requests,
                          config.min_tokens, config.min_ratio)
        hour = _scored(slot.per_hour, observation.hour_tokens, config.min_history_hours,
                       config.min_tokens, config.min_ratio)
        slot.per_request.update_clipped(math.log10(observation.tokens + 1), MIN_LOG_STD)
        if observation.closed_hour is not None:
            slot.per_hour.update_clipped(math.log10(observation.closed_hour.tokens + 1),
                                         MIN_LOG_STD)

        if request is None and hour is None:
            return None
        if hour is not None and (request is None or hour[0] >= request[0]):
            score, expected = hour
            return Finding(
                score=score, feature="tokens_per_hour", observed=observation.hour_tokens,
                expected=expected,
                explanation=(
                    f"This hour's usage reached {observation.hour_tokens:,} tokens over "
                    f"{observation.hour_requests} requests, "
                    f"{observation.hour_tokens / expected:.1f}x this user's usual "
                    f"{expected:,.0f} tokens in an active hour."
                ),
            )
        assert request is not None
        score, expected = request
        return Finding(
            score=score, feature="tokens_per_request", observed=observation.tokens,
            expected=expected,
            explanation=(
                f"One request used {observation.tokens:,} tokens, "
                f"{observation.tokens / expected:.1f}x this user's usual {expected:,.0f} "
                f"per request (model {observation.event.model})."
            ),
            single_event=True,
        )


def _scored(baseline: EWStats, tokens: int, min_history: int, min_tokens: int,
            min_ratio: float) -> tuple[float, float] | None:
    """(score, expected tokens) if ``tokens`` is scoreable and large enough to matter."""
    if baseline.count < min_history or tokens < min_tokens:
        return None
    expected = 10.0 ** baseline.mean
    if tokens < min_ratio * expected:
        return None
    return tail_score(baseline.z(math.log10(tokens + 1), MIN_LOG_STD)), expected

