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
from detectors.calibration import (
    REQUEST_OVERDISPERSION,
    combined_decades,
    decades_score,
    normal_tail_decades,
    poisson_tail_decades,
    tail_score,
)
from schemas import AnomalyKind
from schemas.config import SpikeConfig

MIN_LOG_STD = 0.1
"""Spread floor (log10): a very regular user still tolerates ~25% variation."""
LOG10_MEAN_CORRECTION = math.log(10.0) / 2.0
"""For log-normal sizes, log10 of the mean is the mean log10 plus this times the variance."""
REQUESTS_PER_INDEPENDENT_SIZE = 3.0
"""An hour's requests are not independent draws of size: a session's grow together.
Their mean size is judged as if from one request in this many, or in as many as the
running session has had: a long conversation re-sends its growing context each turn."""
CONTEXT_STEP = 1.5
"""A conversation's request may carry up to this many times the input of its earlier
ones and still be its context piling up, not a spike of its own (the hour counts it)."""
HOURS_TO_JUDGE_BY_TOTALS = 40
"""Active hours known before the hourly totals alone can mark an hour out of line: a
younger mean moves too much (backtest: from 8 hours on, 3 more false alerts for one
more spike found)."""
COLD_START_MIN_TEAM_COUNT = 50
COLD_START_MIN_LOG_STD = 0.4
"""A newcomer is judged by the team's spread at least this wide: people differ a lot."""


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
    config: SpikeConfig

    def __init__(self, config: SpikeConfig) -> None:
        self.config = config

    def new_slot(self) -> SpikeSlot:
        config = self.config
        return SpikeSlot(EWStats(config.request_fading_factor), EWStats(config.fading_factor))

    def restore(self, values: list[float]) -> SpikeSlot:
        config = self.config
        return SpikeSlot(EWStats.from_list(config.request_fading_factor, values[:3]),
                         EWStats.from_list(config.fading_factor, values[3:]))

    def observe(self, slot: SpikeSlot, observation: Observation) -> Finding | None:
        config = self.config
        shift = observation.team_shift
        request = None
        if not observation.grew_with_session(CONTEXT_STEP):
            request = _scored(_baseline_or_team(slot.per_request, observation.team_per_request,
                                                config.min_history_requests),
                              observation.tokens, shift, config, config.min_request_ratio)
        if observation.usual_hourly_requests.count >= config.min_history_hours and (
                slot.per_request.count >= config.min_history_requests):
            hour = _scored_hour(slot.per_request, observation, config)
        else:
            hour = _scored(_baseline_or_team(slot.per_hour, observation.team_per_hour,
                                             config.min_history_hours),
                           observation.hour_tokens, shift, config, config.min_ratio)
        if hour is None and not _far_above_usual_hours(slot.per_hour, observation, config):
            # Requests of an hour already out of line are not learned as normal ones.
            slot.per_request.update_clipped(math.log10(observation.tokens + 1), MIN_LOG_STD)
        if observation.closed_hour is not None:
            slot.per_hour.update_clipped(math.log10(observation.closed_hour.tokens + 1),
                                         MIN_LOG_STD)

        if request is None and hour is None:
            return None
        if hour is not None and (request is None or hour[0] > request[0]):
            score, expected = hour
            return Finding(
                score=score, feature="tokens_per_hour", observed=observation.hour_tokens,
                expected=expected,
                explanation=(
                    f"Usage in the last hour reached {observation.hour_tokens:,} tokens over "
                    f"about {observation.hour_requests} requests, "
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


def _baseline_or_team(own: EWStats, team: EWStats | None, min_history: int) -> EWStats | None:
    """The user's own baseline once warm; before that, the team's (a cold start), widened."""
    if own.count >= min_history:
        return own
    if team is None or team.count < COLD_START_MIN_TEAM_COUNT:
        return None
    return EWStats(team.fading_factor, team.count, team.mean,
                   max(team.var, COLD_START_MIN_LOG_STD**2))


def _far_above_usual_hours(per_hour: EWStats, observation: Observation, config: SpikeConfig
                           ) -> bool:
    """Is the running hour ``min_ratio`` times the user's mean active hour, by hourly totals?

    A burst of requests each a few times the usual size is learned request by request,
    so the sizes' baseline climbs toward it and its hour looks ever less unusual. The
    hourly totals, learned only as hours close, still see the hour whole: while they
    say it is far out, its requests are not learned.
    """
    if per_hour.count < HOURS_TO_JUDGE_BY_TOTALS:
        return False
    usual = 10.0 ** (per_hour.mean + LOG10_MEAN_CORRECTION * per_hour.var
                     + observation.team_shift)
    return _large_enough(observation.hour_tokens, usual, config.min_ratio, config)


def _scored_hour(per_request: EWStats, observation: Observation, config: SpikeConfig
                 ) -> tuple[float, float] | None:
    """(score, expected tokens) of the running hour: its pace and its request sizes.

    An hour's total is a count of requests times their sizes; each part is judged
    against the user's own (requests per active hour, log10 size per request), and
    the two surprises are combined. Partial hours (arriving, leaving) do not widen
    the baseline, as they would for hourly totals.
    """
    shift = observation.team_shift
    requests = observation.hour_requests
    spread = max(per_request.std, MIN_LOG_STD)
    mean_size = 10.0 ** (per_request.mean + LOG10_MEAN_CORRECTION * spread**2 + shift)
    pace = observation.usual_hourly_requests.mean
    expected = pace * mean_size
    tokens = observation.hour_tokens
    if not _large_enough(tokens, expected, config.min_ratio, config):
        return None
    count_decades = poisson_tail_decades(requests, pace * REQUEST_OVERDISPERSION)
    per_draw = max(REQUESTS_PER_INDEPENDENT_SIZE, observation.session_requests)
    independent = max(1.0, requests / per_draw)
    size_z = (math.log10(tokens / requests) - math.log10(mean_size)) / (
        spread / math.sqrt(independent))
    decades = combined_decades(count_decades, normal_tail_decades(size_z))
    return decades_score(decades), expected


def _scored(baseline: EWStats | None, tokens: int, team_shift: float, config: SpikeConfig,
            min_ratio: float) -> tuple[float, float] | None:
    """(score, expected tokens) if ``tokens`` is scoreable and large enough to matter."""
    if baseline is None:
        return None
    expected = 10.0 ** (baseline.mean + team_shift)
    if not _large_enough(tokens, expected, min_ratio, config):
        return None
    return tail_score(baseline.z(math.log10(tokens + 1) - team_shift, MIN_LOG_STD)), expected


def _large_enough(tokens: int, expected: float, min_ratio: float, config: SpikeConfig) -> bool:
    """Enough tokens to matter (``min_tokens``), and ``min_ratio`` times the expected."""
    return tokens >= config.min_tokens and tokens >= min_ratio * expected
