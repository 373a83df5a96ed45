"""Scripted loop: near-identical requests at machine-regular intervals.

People are bursty: the gaps between their requests vary widely. A script sends
the same few prompts with the same gap, for hours. Counts consecutive gaps within
``max_jitter`` of the running period, each one a person would rarely produce, and the
closer to the period, the rarer. A gap of two or three periods (a beat missed, or its
request delivered late) keeps the run without counting, and a request that arrives
after a later one is left out: events from several producers do not reach Kafka in
perfect order. Once the run's requests repeat prompts, the person's own requests in
between (new prompts) are left out too: a script keeps its beat while its owner works.

An identity whose loop comes back on a later day at the same beat is a machine doing
its job (a pipeline, a build agent, an indexer): that loop is its own pattern, learned
once, and only a loop at another beat is new. So are the loops of an identity that runs
around the clock (``Observation.round_the_clock``: no person does), and a loop found
before any day of the identity or of its team's members has closed: tokenradar has just
started, and the loop is all it knows of a service account. An identity first seen
later, in a team with a day behind it (however light its members, however few their
days), is new: its loop is raised.
"""

from __future__ import annotations

import math

from msgspec import field

from tokenradar.detectors.base import Detector, Finding, Observation, Slot
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.calibration import SCORE_DECADES
from tokenradar.schemas.config import ScriptedLoopConfig
from tokenradar.schemas.kinds import SCRIPTED_LOOP

PERIOD_FADING = 0.2
TOKENS_FADING = 0.1
HUMAN_REGULAR_GAP_PROBABILITY = 0.25
"""Generous chance that a person's next gap lands within 10% of the last ones'..."""
HUMAN_GAP_DENSITY = 2.5
"""...and within a share d of them, at most this times d: for gaps as spread as people's
(log-normal, sd 0.75), about 0.75 d."""
TIMING_PRECISION = 0.01
"""Gaps closer than this share of the period count as this close: clocks and networks
blur timing, so a closer gap is no rarer."""
NEAR_BEAT = 2.0
"""A gap off the period by up to this many times ``max_jitter`` keeps an established run
without counting: timestamps taken when a response ends jitter by a few seconds, and
one such gap must not restart a loop's evidence."""
MIN_PERIOD_SECONDS = 1.0
NEAR_CONSTANT_LOG_STD = 0.05
MAX_BEATS_PER_GAP = 3
"""A gap of two or three periods is a beat missed (or arrived late), not the end of a
loop: it keeps the run, uncounted..."""
ESTABLISHED = 2
"""...once this many regular gaps agree on the period; before, the period may be a
chance half of the real one (a person's request between two of the script's)."""


class LoopSlot(Slot):
    period: EWStats = field(default_factory=EWStats)
    """Seconds between the run's regular requests (PERIOD_FADING)."""
    tokens: EWStats = field(default_factory=EWStats)
    """log10 tokens of the user's requests (TOKENS_FADING)."""
    regular_in_a_row: int = 0
    loop_start: float = 0.0
    last_time: float = -1.0
    """The run's last request (-1: none yet); gaps are measured from it."""
    decades: float = 0.0
    """How unlikely the run's regular gaps are from a person (-log10)."""
    on_repeats: bool = False
    """The run's last request repeated a recent prompt."""
    repeats: int = 0
    """The run's regular requests that repeated a recent prompt."""
    habit_period: float = 0.0
    """The beat (seconds) of the first loop this identity ran (0: none yet)..."""
    habit_day: int = -1
    """...and the UTC day (days since 1970) it was found on."""

    def restart(self, time: float) -> None:
        self.regular_in_a_row, self.repeats, self.decades, self.loop_start = 0, 0, 0.0, time
        self.period = EWStats()


class ScriptedLoopDetector(Detector):
    """Finds runs of machine-regular request gaps with repeated prompts.

    Parameters
    ----------
    config
        Run length, jitter and period bounds; see
        :class:`tokenradar.schemas.config.ScriptedLoopConfig`.
    """

    declaration = SCRIPTED_LOOP
    slot_type = LoopSlot
    config: ScriptedLoopConfig

    def __init__(self, config: ScriptedLoopConfig) -> None:
        self.config = config

    def observe(self, slot: LoopSlot, observation: Observation) -> Finding | None:
        config = self.config
        time = observation.time
        gap = time - slot.last_time if slot.last_time >= 0 else math.inf
        if gap < 0:
            # Arrived after a later request (producers on several hosts): its place in
            # the rhythm is unknown, so it neither extends nor breaks the run.
            return None
        running = gap <= config.max_period_seconds
        if running and slot.on_repeats and not observation.repeated:
            # A new prompt between a script's repeated ones: its owner at work.
            return None
        slot.last_time, slot.on_repeats = time, observation.repeated
        slot.tokens.update(math.log10(observation.tokens + 1), TOKENS_FADING)
        if not running:
            slot.restart(time)
            return None
        period = slot.period.mean
        beats = round(gap / period) if slot.period.count and period >= MIN_PERIOD_SECONDS else 0
        most_beats = MAX_BEATS_PER_GAP if slot.regular_in_a_row >= ESTABLISHED else 1
        deviation = abs(gap - beats * period) / period if beats else 1.0
        on_beat = 1 <= beats <= most_beats and deviation <= config.max_jitter
        near_beat = (slot.regular_in_a_row >= ESTABLISHED and 1 <= beats <= most_beats
                     and deviation <= NEAR_BEAT * config.max_jitter)
        if on_beat and beats == 1:
            slot.regular_in_a_row += 1
            slot.repeats += observation.repeated
            slot.decades -= math.log10(min(HUMAN_REGULAR_GAP_PROBABILITY, HUMAN_GAP_DENSITY
                                           * max(deviation, TIMING_PRECISION)))
            slot.period.update(gap, PERIOD_FADING)
        elif not on_beat and not near_beat:
            slot.restart(time)
            slot.period.update(gap, PERIOD_FADING)
        # A gap of a few whole periods (a beat missed, or its request arrived late) keeps
        # the run without counting in it.

        if slot.regular_in_a_row < config.min_regular_requests:
            return None
        near_constant = slot.tokens.std <= NEAR_CONSTANT_LOG_STD
        repeat_share = slot.repeats / slot.regular_in_a_row
        if repeat_share < config.min_repeat_share and not near_constant:
            return None
        if observation.round_the_clock or self.just_started(observation):
            self.learn_habit(slot, period, observation.time)
            return None
        if self.is_habit(slot, period, observation.time):
            return None
        minutes = (observation.time - slot.loop_start) / 60.0
        return Finding(
            score=min(1.0, slot.decades / SCORE_DECADES), feature="regular_request_gaps",
            observed=slot.regular_in_a_row, expected=0.0,
            explanation=(
                f"{slot.regular_in_a_row} requests in a row at a regular {period:.1f} s "
                f"interval (within {config.max_jitter:.0%}) for {minutes:.0f} min, "
                f"{repeat_share:.0%} of them repeating a recent prompt: looks scripted."
            ),
        )

    @staticmethod
    def just_started(observation: Observation) -> bool:
        """Whether tokenradar has just started for this identity: no day of its own nor
        of any member of its team has closed. Not "its team's hours are unknown": a team
        of light users takes weeks to be known, and a member's loop in its second week is
        no startup."""
        return observation.profile_days == 0 and observation.team_tool_days == 0

    def is_habit(self, slot: LoopSlot, period: float, time: float) -> bool:
        """Whether this loop is the identity's own: the beat of a loop it ran on an earlier
        day. The first loop found sets the habit; one at another beat is still a finding.

        >>> detector = ScriptedLoopDetector(ScriptedLoopConfig())
        >>> slot, day = LoopSlot(), 86_400.0
        >>> detector.is_habit(slot, 4.9, 3 * day), detector.is_habit(slot, 4.9, 3.5 * day)
        (False, False)
        >>> detector.is_habit(slot, 5.0, 4 * day), detector.is_habit(slot, 30.0, 4 * day)
        (True, False)
        """
        if self.learn_habit(slot, period, time):
            return False
        same_beat = abs(period - slot.habit_period) <= self.config.max_jitter * slot.habit_period
        return same_beat and int(time // 86_400) > slot.habit_day

    @staticmethod
    def learn_habit(slot: LoopSlot, period: float, time: float) -> bool:
        """Take this loop's beat as the identity's habit, unless it has one: whether it
        was taken."""
        if slot.habit_period > 0.0:
            return False
        slot.habit_period, slot.habit_day = period, int(time // 86_400)
        return True
