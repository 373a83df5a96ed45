"""Creep: the level rising a few percent per working day, for weeks.

Each active day's level (log10 tokens per active hour) is compared with a reference
level of the user's earlier days. Once days run above it (a CUSUM), the reference
stops learning and the days since are *held*; while held, two calibrated tests ask
whether they rose: their mean over the reference, and a ramp (later days weigh more,
as a creep grows day by day). When the CUSUM falls back to zero the held days were
no rise after all and are learned into the reference, so no day is ever left out of
it (leaving out the high ones would bias it low).

Both tests account for the reference's own uncertainty (a week of days tells its
mean only roughly, and its spread is shrunk toward a prior), and weigh each day by
its active hours (a one-hour evening is a noisy day). The running day is scored
provisionally once it has a few active hours, so a rise is seen the same day rather
than only at the next request, often after a weekend. While the member's whole team
moves, the rise is learned instead: a team ramping together is one population shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from detectors.base import ClosedBucket, Detector, Finding, Observation
from detectors.calibration import decades_score, normal_tail_decades
from schemas import AnomalyKind
from schemas.config import CreepConfig

HOUR = 3600.0
DAY = 86_400.0
REFERENCE_FADING = 0.1
"""Share of the reference a newly learned day takes once ten days are in it."""
RECENT_FADING = 0.4
"""The recent level (what an alert reports) follows the last few days."""
HALF_WEIGHT_HOURS = 4.0
"""Active hours at which a day weighs half an (impossibly) long one: a day's noise
falls with its hours, as its level averages more sessions."""
MAX_DAY_Z = 4.0
"""A day this many deviations above the reference and the recent level is a jump, not
a creep's next step."""
TESTS = 2
"""Mean and ramp: the better of two tests is reported, so its tail is doubled."""
SLOT_LENGTH = 16
"""Numbers in a stored creep slot (``CreepSlot.to_list``)."""
MAX_HELD_DAYS = 20
"""Days held this long are the user's new level, reported or not: they become the
reference rather than stay surprising forever."""


@dataclass(slots=True)
class Days:
    """Weighted days: count, weight, mean and sum of squared deviations (West), fading.

    ``fading`` 0 keeps every day alike (the held days); otherwise a new day takes at
    least that share, once the count is past ``1 / fading``.
    """

    count: float = 0.0
    weight: float = 0.0
    mean: float = 0.0
    squares: float = 0.0

    def add(self, other: Days, fading: float = 0.0) -> None:
        """Merge ``other`` in (Chan's parallel update), fading what was here first."""
        if other.weight <= 0.0:
            return
        keep = (1.0 - fading) ** other.count if self.count * fading >= 1.0 else 1.0
        weight = keep * self.weight + other.weight
        delta = other.mean - self.mean
        self.mean += delta * other.weight / weight
        self.squares = (keep * self.squares + other.squares
                        + delta * delta * keep * self.weight * other.weight / weight)
        self.count = keep * self.count + other.count
        self.weight = weight

    def to_list(self) -> list[float]:
        return [self.count, self.weight, self.mean, self.squares]


def one_day(level: float, weight: float) -> Days:
    return Days(1.0, weight, level, 0.0)


@dataclass(slots=True)
class CreepSlot:
    reference: Days = field(default_factory=Days)
    held: Days = field(default_factory=Days)
    ramp: float = 0.0
    """Sum over held days of weight * day number * excess over the reference."""
    ramp_days: float = 0.0
    """Sum over held days of weight * day number."""
    ramp_squares: float = 0.0
    """Sum over held days of weight * day number squared."""
    cusum: float = 0.0
    jumps: int = 0
    """Days left out while held, each far above the reference (see MAX_DAY_Z)."""
    recent: float = 0.0
    """The recent level, log10 tokens per active hour (exponentially weighted)."""
    day_tokens: float = 0.0
    """The running day, so far: tokens and the mask of its active UTC hours."""
    day_hours: int = 0

    def to_list(self) -> list[float]:
        return [*self.reference.to_list(), *self.held.to_list(), self.ramp,
                self.ramp_days, self.ramp_squares, self.cusum, self.jumps, self.recent,
                self.day_tokens, self.day_hours]

    def follow(self, level: float) -> None:
        """Move the recent level toward a day's."""
        first = self.reference.count == 0
        self.recent = level if first else self.recent + RECENT_FADING * (level - self.recent)

    def hold(self, level: float, weight: float) -> None:
        """Add a day to the held ones, as their next day number."""
        excess = level - self.reference.mean
        number = self.held.count + 1.0
        self.held.add(one_day(level, weight))
        self.ramp += weight * number * excess
        self.ramp_days += weight * number
        self.ramp_squares += weight * number * number

    def release(self) -> None:
        """Learn the held days into the reference; nothing is held any more."""
        self.reference.add(self.held, REFERENCE_FADING)
        self.held = Days()
        self.ramp = self.ramp_days = self.ramp_squares = self.cusum = 0.0
        self.jumps = 0

    def learn(self, level: float, weight: float) -> None:
        """Learn a day into the reference, with whatever was held."""
        self.hold(level, weight)
        self.release()


def jump_level(slot: CreepSlot, std: float) -> float:
    """Above this a day jumped: beyond both the reference and the recent days' level."""
    return max(slot.reference.mean, slot.recent) + MAX_DAY_Z * std


def day_weight(active_hours: int) -> float:
    return active_hours / (active_hours + HALF_WEIGHT_HOURS)


def day_level(tokens: float, active_hours: int) -> float:
    """Tokens per active hour (log10): a short day (a late start) is not a drop."""
    return math.log10(tokens / active_hours + 1.0)


class CreepDetector(Detector):
    """Finds a sustained, gradual rise of tokens per active hour, day by day.

    Parameters
    ----------
    config
        Warm-up, CUSUM allowance, prior spread and when the running day counts;
        see :class:`schemas.config.CreepConfig`.
    """

    name = "creep"
    kind = AnomalyKind.CREEP
    config: CreepConfig

    def __init__(self, config: CreepConfig) -> None:
        self.config = config

    def new_slot(self) -> CreepSlot:
        return CreepSlot()

    def restore(self, values: list[float]) -> CreepSlot:
        if len(values) != SLOT_LENGTH:
            # Written by the CUSUM-only creep of before (9 numbers): start it afresh
            # rather than misread it; its reference is relearned within a week.
            return self.new_slot()
        ramp, ramp_days, ramp_squares, cusum, jumps, recent, day_tokens, day_hours = values[8:]
        return CreepSlot(Days(*values[0:4]), Days(*values[4:8]), ramp, ramp_days,
                         ramp_squares, cusum, int(jumps), recent, day_tokens, int(day_hours))

    def observe(self, slot: CreepSlot, observation: Observation) -> Finding | None:
        hour_bit = 1 << int(observation.time % DAY // HOUR)
        day = observation.closed_day
        finding = None
        if day is not None:
            finding = self._close_day(slot, day, observation.team_shift)
            slot.day_tokens, slot.day_hours = 0.0, 0
        slot.day_tokens += observation.tokens
        slot.day_hours |= hour_bit
        hours = slot.day_hours.bit_count()
        if (finding is None and slot.cusum > 0 and observation.team_shift <= 0
                and hours >= self.config.provisional_hours):
            # The running day, scored as if it closed now but not learned: a rise is
            # seen today, not at the next request (after a weekend, or never).
            finding = self._test_running_day(slot, day_level(slot.day_tokens, hours),
                                             day_weight(hours))
        return finding

    def _close_day(self, slot: CreepSlot, day: ClosedBucket, team_shift: float
                   ) -> Finding | None:
        config = self.config
        level = day_level(day.tokens, day.active_hours)
        weight = day_weight(day.active_hours)
        reference = slot.reference
        if reference.count < config.min_history_days or team_shift > 0:
            # While the whole team moves, what this member does with it is the team's
            # new normal, learned rather than tested: one population shift, not N creeps.
            slot.follow(level)
            slot.learn(level, weight)
            return None
        std = self._reference_std(reference)
        finding = None
        if level > jump_level(slot, std):
            # A jump, not a creep's next step: an incident of its own (a spike, a loop, an
            # agent) for other detectors, left out of the held days and the recent level.
            # Learned (clipped) when nothing is held, so a lasting new level is adopted.
            if slot.cusum == 0.0:
                slot.learn(reference.mean + MAX_DAY_Z * std, weight)
                return None
            slot.jumps += 1
        else:
            slot.follow(level)
            slot.cusum = max(0.0, slot.cusum + weight * ((level - reference.mean) / std
                                                         - config.slack))
            slot.hold(level, weight)
            if slot.cusum == 0.0:
                slot.release()
                return None
            finding = self._test(slot)
        if slot.held.count + slot.jumps >= MAX_HELD_DAYS:
            slot.release()
        return finding

    def _reference_std(self, reference: Days) -> float:
        """The reference's day-to-day spread (for a day of weight 1), shrunk toward the
        prior: a week of days underestimates it as often as not."""
        config = self.config
        prior = config.prior_days
        return math.sqrt((prior * config.prior_day_std ** 2 + reference.squares)
                         / (prior + max(0.0, reference.count - 1.0)))

    def _test_running_day(self, slot: CreepSlot, level: float, weight: float
                          ) -> Finding | None:
        """The held days and the running day, as if it closed now (nothing is learned)."""
        if level > jump_level(slot, self._reference_std(slot.reference)):
            return None
        trial = replace(slot, held=replace(slot.held))
        trial.follow(level)
        trial.hold(level, weight)
        return self._test(trial)

    def _test(self, slot: CreepSlot) -> Finding | None:
        """The held days against the reference: their mean, and their ramp."""
        config = self.config
        reference, held = slot.reference, slot.held
        std = self._reference_std(reference)
        ratio = 10.0 ** (slot.recent - reference.mean)
        if held.count < config.min_rising_days or ratio < config.min_ratio:
            return None
        # Each test's variance has the held days' noise and the reference mean's.
        mean_z = (held.mean - reference.mean) / (
            std * math.sqrt(1.0 / held.weight + 1.0 / reference.weight))
        ramp_z = slot.ramp / (std * math.sqrt(slot.ramp_squares
                                              + slot.ramp_days ** 2 / reference.weight))
        decades = normal_tail_decades(max(mean_z, ramp_z)) - math.log10(TESTS)
        old = 10.0 ** reference.mean
        return Finding(
            score=decades_score(decades),
            feature="tokens_per_active_hour_by_day", observed=old * ratio, expected=old,
            explanation=(
                f"Usage has risen over {held.count:.0f} active days to {old * ratio:,.0f} "
                f"tokens per active hour, {ratio:.2f}x this user's earlier {old:,.0f}, "
                f"while their team did not move."
            ),
        )
