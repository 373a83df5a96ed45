"""Gaming: tokenmaxx padding — prompts inflated with filler to look busy.

The tell is input tokens per request several times the user's norm while the
output stays where it was (filler asks nothing new), usually with the same
prompts sent again and again. Input is read at each session's first request, so
the context a long conversation piles up is not mistaken for filler; without repeated
prompts, a run that keeps setting new highs or is read from the prompt cache is a
long context, not filler. A
fast fading mean of recent requests is compared with a slow baseline that stops
learning while requests look inflated.
"""

from __future__ import annotations

import math

from msgspec import field

from tokenradar.detectors.base import Detector, Finding, Observation, Slot
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.calibration import tail_score
from tokenradar.schemas.config import GamingConfig
from tokenradar.schemas.kinds import GAMING

SLOW_FADING = 0.02
FAST_FADING = 0.15
MIN_LOG_STD = 0.1
MIN_REPEATS = 3
"""Repeated prompts in an inflated run before repetition counts as padding's."""
MIN_SESSIONS = 2
"""Sessions an inflated run must span: one conversation that starts big (a pasted
document) is one draw of the user's, however many requests it has; padding pads them all."""
GROWING_FROM_REQUEST = 3
"""A session's request from which a new high counts as its context growing."""
SCRIPTED_REPEAT_SHARE = 0.5
"""Within a long context, the share of recent prompts repeated that makes it padding: a
conversation re-asks some things (a tool run again), a script re-sends most."""
FRESH_START_GAP = 86_400.0
"""After a pause longer than this (seconds), recent requests are judged afresh: padding
that stopped days ago is no company for today's one big conversation."""


class GamingSlot(Slot):
    usual_input: EWStats = field(default_factory=EWStats)
    """log10 input tokens of sessions' first requests, fading slowly (SLOW_FADING)..."""
    usual_output: EWStats = field(default_factory=EWStats)
    """...and log10 output tokens."""
    recent_input: EWStats = field(default_factory=EWStats)
    """The same, fading fast (FAST_FADING)."""
    recent_output: EWStats = field(default_factory=EWStats)
    inflated_in_a_row: int = 0
    repeats_in_a_row: int = 0
    """Of the inflated requests in a row, those whose prompt repeats a recent one: the
    padding's own repetition, not what the user repeated days ago."""
    sessions_in_a_row: int = 0
    """Of the inflated requests in a row, those that started a session."""
    carried_in_a_row: int = 0
    """Of the inflated requests in a row, those carrying a conversation's growing context:
    a new high of its session (or as high: a context window's limit), three requests in
    or later, or mostly read from the prompt cache."""

    def end_run(self) -> None:
        self.inflated_in_a_row = self.repeats_in_a_row = self.sessions_in_a_row = 0
        self.carried_in_a_row = 0


class GamingDetector(Detector):
    """Finds sustained input inflation with unchanged output (tokenmaxxing).

    Parameters
    ----------
    config
        Ratios, repetition share and run length; see
        :class:`tokenradar.schemas.config.GamingConfig`.
    """

    declaration = GAMING
    slot_type = GamingSlot
    config: GamingConfig

    def __init__(self, config: GamingConfig) -> None:
        self.config = config

    def observe(self, slot: GamingSlot, observation: Observation) -> Finding | None:
        config = self.config
        event = observation.event
        if observation.gap is not None and observation.gap > FRESH_START_GAP:
            slot.recent_input, slot.recent_output = EWStats(), EWStats()
            slot.end_run()
        # The session's first request: padding inflates it, a long conversation does not.
        log_input = math.log10(observation.session_first_input + 1)
        log_output = math.log10(event.output_tokens + 1)
        slot.recent_input.update(log_input, FAST_FADING)
        slot.recent_output.update(log_output, FAST_FADING)
        if slot.usual_input.count < config.min_history_requests:
            slot.usual_input.update(log_input, SLOW_FADING)
            slot.usual_output.update(log_output, SLOW_FADING)
            return None

        inflated = log_input - slot.usual_input.mean >= math.log10(config.min_input_ratio)
        if inflated:
            slot.inflated_in_a_row += 1
            slot.repeats_in_a_row += observation.repeated
            slot.sessions_in_a_row += observation.session_requests == 1
            growing = (observation.session_requests >= GROWING_FROM_REQUEST
                       and event.input_tokens >= observation.session_most_input)
            slot.carried_in_a_row += growing or 2 * event.cache_read_tokens >= event.input_tokens
        else:
            if event.session_id is not None and observation.session_requests == 1:
                # A conversation that starts at the usual size: the padding, which pads
                # every session, has stopped.
                slot.end_run()
            else:
                # A normal request slows the run down but does not wipe it out: padders
                # still send the odd real prompt.
                slot.inflated_in_a_row = max(0, slot.inflated_in_a_row - 3)
                slot.repeats_in_a_row = min(slot.repeats_in_a_row, slot.inflated_in_a_row)
                slot.sessions_in_a_row = min(slot.sessions_in_a_row, slot.inflated_in_a_row)
                slot.carried_in_a_row = min(slot.carried_in_a_row, slot.inflated_in_a_row)
            slot.usual_input.update_clipped(log_input, MIN_LOG_STD, SLOW_FADING)
            slot.usual_output.update_clipped(log_output, MIN_LOG_STD, SLOW_FADING)

        input_ratio = 10.0 ** (slot.recent_input.mean - slot.usual_input.mean)
        output_ratio = 10.0 ** (slot.recent_output.mean - slot.usual_output.mean)
        # Only an inflated request can raise the alarm: the first normal one after a
        # pause must not re-open an incident from the memory of the last one.
        if (not inflated or slot.inflated_in_a_row < config.min_requests
                or slot.sessions_in_a_row < MIN_SESSIONS
                or input_ratio < config.min_input_ratio or output_ratio > config.max_output_ratio):
            return None
        # Recent prompts repeat often, and this run's own do: not the memory of a
        # prompt repeated days ago, nor one or two chance repeats.
        # A long context carried from turn to turn (agent and IDE sessions) keeps growing,
        # or is read from the cache; filler is fresh and about the same size each time, so
        # a padded request is a session's new high, three requests in or later, about one
        # time in six (three draws in rising order), not one in three.
        long_context = 3 * slot.carried_in_a_row >= slot.inflated_in_a_row
        repeat_share = observation.repeat_share
        repeated = repeat_share >= (SCRIPTED_REPEAT_SHARE if long_context
                                    else config.min_repeat_share) and (
            slot.repeats_in_a_row >= MIN_REPEATS)
        if not repeated and (
                input_ratio < config.strong_input_ratio
                or slot.inflated_in_a_row < config.unrepeated_min_requests or long_context):
            # Without repeats, only fresh input can be filler.
            return None
        standard_error = max(slot.usual_input.std, MIN_LOG_STD) * math.sqrt(
            FAST_FADING / (2.0 - FAST_FADING))
        usual = 10.0 ** slot.usual_input.mean
        return Finding(
            score=tail_score((slot.recent_input.mean - slot.usual_input.mean) / standard_error),
            feature="input_tokens_per_request", observed=10.0 ** slot.recent_input.mean,
            expected=usual,
            explanation=(
                f"Input tokens per request {input_ratio:.1f}x this user's usual {usual:,.0f} "
                f"for the last {slot.inflated_in_a_row} requests while output stayed at "
                f"{output_ratio:.1f}x usual; {repeat_share:.0%} of recent prompts "
                "repeated: looks like padded prompts."
            ),
        )
