"""Gaming: tokenmaxx padding — prompts inflated with filler to look busy.

Filler is *added* to what a person writes: every conversation they start is bigger by
about the filler, the small ones as much as the big ones, while the answers (output)
stay as they were. So padding lifts the floor of the sizes conversations start at, and
keeps it lifted, conversation after conversation; ordinary work does not: a person who
pastes a document now and then still opens most conversations at their usual sizes,
and long-context work (agents, IDE sessions) grows *within* a conversation, by each
turn's answer and tool result, and is read from the prompt cache, not at its start.

The test: each conversation's start (its fresh input: input tokens not read from the
cache) is ranked against the person's own recent starts, an empirical histogram, so a
heavy-tailed person is judged on their own tails, not on a normal curve; beyond what
their history shows, by a heavy (Student-t) tail around their median. A run of the
newest k starts all at or above a size that a share p of the person's starts reach
happens by chance with probability p**k: the run's surprise is k * -log10(p) (for a young
history, at the median it allows that makes the run least surprising), at best over k
(less the looks taken), with the rarity of its starts' repeated prompts (filler
is often reused) added by Fisher's method. Starts enter the histogram only once they
leave the run, so padding underway is not learned as usual while it is judged. Without
session ids, conversations are inferred (``UsageContext.advance_session``): filler that
varies as prompts do keeps starting new ones.

Filler is added to every turn, not only the first: a conversation's later turns carry it
as fresh input, where ordinary turns read the conversation so far from the prompt cache
and add only a little (the last answer, a tool result, the next question). So each
conversation also has a level: the median fresh input of its later turns, where the
producer reports cache reads. The newest conversations' levels are ranked the same way
against the person's own conversations' levels, and a run of them all at or above their
lowest adds its surprise to the starts' (Fisher's method). A conversation whose later turns
are mostly read from the cache carries its context (long-context work, however big): it
breaks such a run. This finds light users, whose few starts say little on their own.
"""

from __future__ import annotations

import math
from typing import NamedTuple, cast

from msgspec import field

from tokenradar.detectors.base import Detector, Finding, Observation, Slot
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.calibration import (
    binomial_tail_decades,
    combined_decades,
    decades_score,
)
from tokenradar.detectors.records import Ints
from tokenradar.schemas.config import GamingConfig
from tokenradar.schemas.kinds import GAMING

SLOW_FADING = 0.02
FAST_FADING = 0.15
MIN_LOG_STD = 0.1
FRESH_START_GAP = 86_400.0
"""After a pause longer than this (seconds), the run is judged afresh: padding that
stopped days ago is no company for today's one big conversation."""
BIN_DECADES = 0.05
"""Width of a histogram bin of starts, in decades of fresh input tokens (12%)."""
MAX_STARTS = 200
"""Starts the histogram holds before it is halved: it remembers the last 100 to 200."""
RUN_STARTS = 12
"""The newest starts tested as a run, not yet learned into the histogram
(``min_conversations`` is at most this)."""
MIN_START_SPREAD = 0.15
"""Floor of the spread of a person's starts (decades): sizes vary at least this much."""
MAX_START_DECADES = 2.0
"""A start, however big, is at most a 1-in-100 draw of the person's: people take on a big
task now and then, and a new tool may open every conversation with a large context."""
MIN_REPEAT_RATE = 0.05
"""Floor of how often a person's starts repeat a recent prompt (a question asked again)."""
MIN_HISTORY_STARTS = 3
"""Starts learned before any run is judged: a light user opens only a few conversations
a week, and their first padded day must not be learned as their usual (a young history's
spread is shrunk toward PRIOR_SPREAD, so three starts cannot call a start rare)."""
PRIOR_SPREAD = 0.3
"""Spread of a person's starts (decades) before theirs is known: openers vary from a line
to a pasted page, about a factor of two either way..."""
PRIOR_STARTS = 10
"""...weighing as this many starts of their own."""
MEDIAN_ERROR = 1.25
"""Standard error of a median, in spreads over the square root of the sample (1.253 for a
normal sample)..."""
MEDIAN_STEP = 0.1
MEDIAN_STEPS = 40
"""...and the medians a run is judged at: up to four standard errors above the one seen,
in steps of a tenth of one."""
LOG10_E = math.log10(math.e)
LEVEL_TURNS = 9
"""The later turns of a conversation its level is the median of: its first ones, so the
level is known while the conversation goes on..."""
MIN_LEVEL_TURNS = 2
"""...and at least this many: one turn is one draw, not the conversation's level."""
NO_LEVEL = -1
"""A run conversation's level while it has too few later turns to say (or none reported
with cache reads)."""


class GamingSlot(Slot):
    usual_output: EWStats = field(default_factory=EWStats)
    """log10 output tokens of every request, fading slowly (SLOW_FADING)..."""
    recent_output: EWStats = field(default_factory=EWStats)
    """...and fading fast (FAST_FADING)."""
    start_bins: dict[int, int] = {}
    """Histogram of the starts learned: bin (log10 fresh input / BIN_DECADES) -> starts;
    halved whenever it passes MAX_STARTS, so it holds the person's recent starts."""
    run: list[int] = []
    """The bins of the newest starts, oldest first, not yet learned..."""
    run_times: Ints = field(default_factory=Ints)
    """...when each came (epoch seconds)..."""
    run_repeated: list[int] = []
    """...and whether its prompt repeated a recent one (1) or not (0)."""
    start_repeats: EWStats = field(default_factory=EWStats)
    """How often the starts learned repeated a recent prompt (SLOW_FADING)."""
    level_bins: dict[int, int] = {}
    """Histogram of the conversations' levels learned (median fresh input of their later
    turns, bins as ``start_bins``), halved past MAX_STARTS."""
    run_levels: list[int] = []
    """The level of each of the run's conversations (NO_LEVEL while unknown)..."""
    run_carried: list[int] = []
    """...and whether most of its later turns were read from the cache (1) or not (0)."""
    turns: list[int] = []
    """Bins of the fresh input of the newest conversation's first LEVEL_TURNS later turns..."""
    cached_turns: int = 0
    """...how many of them were read mostly from the cache..."""
    following_run: bool = False
    """...and whether that conversation is the run's newest (else its level is learned
    when it ends)."""

    @property
    def start_mass(self) -> int:
        return sum(self.start_bins.values())

    def learn_start(self, index: int) -> None:
        self.start_bins = learned(self.start_bins, index, MAX_STARTS)

    def learn_level(self, index: int) -> None:
        if index != NO_LEVEL:
            self.level_bins = learned(self.level_bins, index, MAX_STARTS)

    @property
    def level(self) -> int:
        """The newest conversation's level: the median of its later turns held."""
        if len(self.turns) < MIN_LEVEL_TURNS:
            return NO_LEVEL
        return sorted(self.turns)[(len(self.turns) - 1) // 2]

    def end_conversation(self) -> None:
        """The newest conversation is over: its level stays with the run, or is learned."""
        if not self.following_run:
            self.learn_level(self.level)
        self.turns, self.cached_turns, self.following_run = [], 0, False

    def quantile(self, share: float) -> float:
        return quantile(self.start_bins, share)


class GamingDetector(Detector):
    """Finds conversations started inflated, one after another, output unchanged.

    Parameters
    ----------
    config
        Ratios and warm-up; see :class:`tokenradar.schemas.config.GamingConfig`.
    """

    declaration = GAMING
    slot_type = GamingSlot
    config: GamingConfig

    def __init__(self, config: GamingConfig) -> None:
        self.config = config

    def observe(self, slot: GamingSlot, observation: Observation) -> Finding | None:
        event = observation.event
        if observation.gap is not None and observation.gap > FRESH_START_GAP:
            self._learn_run(slot)
        log_output = math.log10(event.output_tokens + 1)
        slot.recent_output.update(log_output, FAST_FADING)
        slot.usual_output.update_clipped(log_output, MIN_LOG_STD, SLOW_FADING)
        if observation.session_requests != 1:
            return self._later_turn(slot, observation)
        slot.end_conversation()
        # A conversation's start: what the person wrote. One mostly read from the cache
        # was written before (a conversation resumed, an agent's standing instructions),
        # unless its prompt is one sent again: then the cache serves the same filler.
        if (observation.from_cache and not observation.repeated) or event.output_tokens == 0:
            # Nor is a request without an answer (an embedding) a prompt padded for one.
            return None
        index = size_index(event.input_tokens if observation.repeated
                           else observation.fresh_input)
        if slot.start_mass < MIN_HISTORY_STARTS:
            slot.learn_start(index)
            slot.start_repeats.update(float(observation.repeated), SLOW_FADING)
            return None
        slot.run.append(index)
        slot.run_times.append(int(observation.time))
        slot.run_repeated.append(int(observation.repeated))
        slot.run_levels.append(NO_LEVEL)
        slot.run_carried.append(0)
        slot.following_run = True
        if len(slot.run) > RUN_STARTS:
            self._learn_oldest(slot)
        return self._judge(slot, observation.time)

    def _later_turn(self, slot: GamingSlot, observation: Observation) -> Finding | None:
        """A later turn's fresh input joins its conversation's level; while that
        conversation is the run's newest, the run is judged again."""
        event = observation.event
        # Only a producer that reports cache reads says which input is fresh.
        if (event.cache_read_tokens == 0 or event.output_tokens == 0
                or len(slot.turns) >= LEVEL_TURNS):
            return None
        slot.turns.append(size_index(observation.fresh_input))
        slot.cached_turns += observation.from_cache
        if not slot.following_run:
            return None
        slot.run_levels[-1] = slot.level
        slot.run_carried[-1] = int(2 * slot.cached_turns >= len(slot.turns))
        # Only a conversation that is itself inflated can make a run of them (and most
        # turns are not: this spares judging the run on every turn).
        if slot.run_levels[-1] == NO_LEVEL or (slot.level_bins and size_of(
                slot.run_levels[-1]) - quantile(slot.level_bins, 0.5) < math.log10(
                self.config.min_input_ratio)):
            return None
        return self._judge(slot, observation.time, by_levels=True)

    def _judge(self, slot: GamingSlot, now: float, by_levels: bool = False
               ) -> Finding | None:
        """The run's finding; ``by_levels``: judged on a later turn, only runs whose
        levels are known count (the starts alone were judged when they came, and their
        answers may have been anything but usual then)."""
        config = self.config
        output_ratio = 10.0 ** (slot.recent_output.mean - slot.usual_output.mean)
        if (output_ratio > config.max_output_ratio
                or slot.usual_output.count < config.min_history_requests):
            return None
        best = self._best_run(slot, now, by_levels)
        if best is None:
            return None
        # Up to RUN_STARTS - shortest + 1 runs were looked at: pay for the looks.
        decades = best.decades - math.log10(RUN_STARTS - config.min_conversations + 1)
        starts, levels = best.starts, best.levels
        if starts is not None:
            said = (f"{starts.ratio:.1f}x this user's usual {10.0 ** starts.usual:,.0f} at the "
                    f"start of each of their last {best.length} conversations, the smallest "
                    f"{10.0 ** size_of(starts.floor):,.0f} (reached by {starts.share:.0%} of "
                    "their usual starts)")
            if levels is not None:
                said += (f", and {levels.ratio:.1f}x their usual fresh input (not read from "
                         "the cache) in those conversations' later turns")
        else:
            levels = best.shown
            said = (f"{levels.ratio:.1f}x this user's usual fresh input (not read from the "
                    f"cache) {10.0 ** levels.usual:,.0f} in the later turns of each of their "
                    f"last {best.length} conversations, the smallest conversation's median "
                    f"{10.0 ** size_of(levels.floor):,.0f} (reached by {levels.share:.0%} of "
                    "their usual conversations)")
        return Finding(
            score=decades_score(decades), feature="input_tokens_per_request",
            observed=10.0 ** best.shown.mean, expected=10.0 ** best.shown.usual,
            explanation=(
                f"Input tokens per request {said}, while output stayed at "
                f"{output_ratio:.1f}x usual: looks like padded prompts."
            ),
        )

    def _best_run(self, slot: GamingSlot, now: float, by_levels: bool) -> Run | None:
        """The most surprising run of the newest conversations, all started at or above
        their lowest start, or all at or above their lowest level; None if no run is long
        and big enough (``by_levels``: and at or above their lowest level)."""
        config = self.config
        run = slot.run
        best: Run | None = None
        for k in range(config.min_conversations, len(run) + 1):
            if now - slot.run_times[-k] < config.min_run_minutes * 60.0:
                continue  # a busy hour of big work is not a working day padded
            levels = self._levels(slot, k)
            if by_levels and levels is None:
                continue
            starts = self._starts(slot, k)
            found = [side.decades for side in (starts, levels) if side is not None]
            if not found:
                continue
            decades = max(*found, combined_decades(*found))
            # Filler is often reused: starts repeating recent prompts add their rarity.
            repeats = binomial_tail_decades(sum(slot.run_repeated[-k:]), k, max(
                MIN_REPEAT_RATE, slot.start_repeats.mean))
            decades = max(decades, combined_decades(decades, repeats))
            if best is None or decades > best.decades:
                best = Run(decades, k, starts, levels)
        return best

    def _starts(self, slot: GamingSlot, length: int) -> Evidence | None:
        """How surprising the newest ``length`` starts are, all at or above their lowest;
        None unless they are ``min_input_ratio`` over the usual start."""
        starts = slot.run[-length:]
        # The starts before the run, learned or still held, are the person's usual.
        before = dict(slot.start_bins)
        for index in slot.run[:-length]:
            before[index] = before.get(index, 0) + 1
        return self._evidence(starts, before, slot.quantile(0.5))

    def _levels(self, slot: GamingSlot, length: int) -> Evidence | None:
        """The same of the newest ``length`` conversations' levels; None unless each has
        one, none was carried from the cache, and enough levels are known before them."""
        levels = slot.run_levels[-length:]
        if NO_LEVEL in levels or any(slot.run_carried[-length:]):
            return None
        before = dict(slot.level_bins)
        for index in slot.run_levels[:-length]:
            if index != NO_LEVEL:
                before[index] = before.get(index, 0) + 1
        if sum(before.values()) < MIN_HISTORY_STARTS:
            return None
        return self._evidence(levels, before, quantile(before, 0.5))

    def _evidence(self, sizes: list[int], before: dict[int, int], usual: float
                  ) -> Evidence | None:
        mean = sum(size_of(index) for index in sizes) / len(sizes)
        if mean - usual < math.log10(self.config.min_input_ratio):
            return None
        lowest = min(sizes)
        share, decades = run_surprise(before, lowest, len(sizes))
        return Evidence(decades, mean, usual, lowest, share)

    @staticmethod
    def _learn_oldest(slot: GamingSlot) -> None:
        slot.learn_start(slot.run.pop(0))
        slot.run_times.pop(0)
        slot.start_repeats.update(float(slot.run_repeated.pop(0)), SLOW_FADING)
        slot.run_carried.pop(0)
        slot.learn_level(slot.run_levels.pop(0))
        if not slot.run:  # the conversation going on has left the run, its level learned
            slot.turns, slot.cached_turns, slot.following_run = [], 0, False

    def _learn_run(self, slot: GamingSlot) -> None:
        while slot.run:
            self._learn_oldest(slot)


class Evidence(NamedTuple):
    """A run's sizes (starts or levels), all at or above their ``floor`` bin."""

    decades: float
    mean: float
    """Mean size (log10) of the run's sizes..."""
    usual: float
    """...and the person's median."""
    floor: int
    share: float
    """How often the person's own sizes reach the floor."""

    @property
    def ratio(self) -> float:
        return float(10.0 ** (self.mean - self.usual))


class Run(NamedTuple):
    """A run of the newest conversations: its surprise, from their starts, their levels
    or both."""

    decades: float
    length: int
    starts: Evidence | None
    levels: Evidence | None

    @property
    def shown(self) -> Evidence:
        """The evidence an alert's figures come from: the starts', else the levels'."""
        return self.starts or cast(Evidence, self.levels)


def learned(bins: dict[int, int], index: int, most: int) -> dict[int, int]:
    """The histogram ``bins`` with one more in bin ``index``; halved past ``most``, so
    that it holds the person's recent sizes."""
    bins[index] = bins.get(index, 0) + 1
    if sum(bins.values()) > most:
        return {b: n // 2 for b, n in bins.items() if n > 1}
    return bins


def run_surprise(bins: dict[int, int], index: int, length: int) -> tuple[float, float]:
    """(How often a start reaches bin ``index``, the surprise in decades of ``length``
    starts in a row all reaching it).

    How often: the share of the starts learned at or above it, or beyond what was seen, a
    Student-t tail (3 degrees of freedom, heavy) around the median with the robust
    spread: a young history cannot say "never", and a size ten spreads out is rarer than
    one just past the largest. Each start is at most MAX_START_DECADES.

    The run's starts all lean on the same median, which a young history knows only
    roughly (its standard error is MEDIAN_ERROR spreads over the square root of the
    starts learned): the run is judged at the median the history allows that makes it
    least surprising, paying for how far that median is from the one seen (a normal
    prior's decades). Ten starts each a little above three learned ones say the person's
    usual was underestimated, not that ten were padded in a row; a long history's median
    is known, and its runs are judged as before.
    """
    mass = sum(bins.values())
    above = sum(n for b, n in bins.items() if b >= index) / mass
    median, scale = quantile(bins, 0.5), spread(bins)
    error = MEDIAN_ERROR * scale / math.sqrt(mass)
    best_share, best = 1.0, math.inf
    for step in range(MEDIAN_STEPS + 1):
        cost = LOG10_E * (step * MEDIAN_STEP) ** 2 / 2.0
        if cost >= best:
            break
        share = max(above, t3_tail(
            (size_of(index) - median - step * MEDIAN_STEP * error) / scale))
        decades = length * min(MAX_START_DECADES, -math.log10(share)) + cost
        if decades < best:
            best_share, best = share, decades
    return best_share, best


def quantile(bins: dict[int, int], share: float) -> float:
    """The size (log10) below which ``share`` of those learned are."""
    wanted, total = sum(bins.values()) * share, 0.0
    for index in sorted(bins):
        total += bins[index]
        if total >= wanted:
            return size_of(index)
    return 0.0


def spread(bins: dict[int, int]) -> float:
    """Robust standard deviation of the sizes learned (from their quartiles), shrunk
    toward PRIOR_SPREAD as if it were PRIOR_STARTS more of them, floored."""
    mass = sum(bins.values())
    own = (quantile(bins, 0.75) - quantile(bins, 0.25)) / 1.349
    shrunk = math.sqrt((mass * own ** 2 + PRIOR_STARTS * PRIOR_SPREAD ** 2)
                       / (mass + PRIOR_STARTS))
    return max(MIN_START_SPREAD, shrunk)


def size_index(tokens: int) -> int:
    """The histogram bin of ``tokens`` fresh input tokens."""
    return int(math.log10(tokens + 1) / BIN_DECADES)


def size_of(index: int) -> float:
    """The size (log10 fresh input tokens) a histogram bin stands for: its middle."""
    return (index + 0.5) * BIN_DECADES


def t3_tail(t: float) -> float:
    """Upper tail of Student's t with 3 degrees of freedom beyond ``t`` (closed form).

    >>> round(t3_tail(0.0), 3), round(t3_tail(3.182), 4)
    (0.5, 0.025)
    """
    x = t / math.sqrt(3.0)
    return max(1e-300, 0.5 - (x / (1.0 + x * x) + math.atan(x)) / math.pi)
