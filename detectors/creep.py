"""Creep: the level rising a few percent per working day, for weeks.

A creep shows in day-by-day *aspects*, each compared with a reference of the user's
earlier days: tokens per active hour (more or longer work), output tokens per request
(answers growing), and output tokens per active hour (pace and answer size joined, as
a creep grows in both). Answers vary much less from day to day than tokens per hour (a
day's output averages many answers, its input follows whichever conversations piled up
context), so growing answers are found within weeks where the hourly level alone would
not show them before the run's end (backtest: 2 of 84 creeps found by the hourly level
alone, 27 with answers too); a creep in pace alone leaves answers where they were, and
only their joint level shows it without the context's noise.

In each aspect, once days run above the reference (a CUSUM) it stops learning and the
days since are *held*; while held, two calibrated tests ask whether they rose: their
mean over the reference, and a ramp (later days weigh more, as a creep grows day by
day). When the CUSUM falls back to zero the held days were no rise after all and are
learned into the reference, so no day is ever left out of it (leaving out the high
ones would bias it low).

Both tests account for the reference's own uncertainty (a week of days tells its
mean only roughly, and its spread is shrunk toward a prior), and weigh each day by how
much it saw (a one-hour evening is a noisy day). The running day is scored
provisionally once it has a few active hours, so a rise is seen the same day rather
than only at the next request, often after a weekend. While the member's team rises
toward a shift (``TeamState.rising_by``) and its median member's level shows at least
half of it, a member rising with it is learned (a team ramping together is one
population shift), and a member rising beyond it waits, neither learned nor held, so a
creep held so far is not learned away by a few days of the team's. Once the team's
shift is reported, their days are learned.

A team's shift shows in its members' own levels days before its summed days are sure of
it (a member's answers vary a few percent a day, a team's days by a third): so a recent
level is reported only once it is ``min_ratio`` over the reference beyond the team's
median member in the same level, each member's recent level over their own reference
(``CreepSlot.rises``, gathered by ``TeamState.members_rise``), taken TEAM_SPREAD times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from msgspec import field
from msgspec.structs import replace

from tokenradar.detectors.base import ClosedBucket, Detector, Finding, Observation, Slot
from tokenradar.detectors.calibration import decades_score, normal_tail_decades
from tokenradar.detectors.records import Record
from tokenradar.schemas.config import CreepConfig
from tokenradar.schemas.kinds import CREEP

REFERENCE_FADING = 0.1
"""Share of the reference a newly learned day takes once ten days are in it."""
RECENT_FADING = 0.4
"""The recent level (what an alert reports) follows the last few days."""
MAX_DAY_Z = 4.0
"""A day this many deviations above the reference and the recent level is a jump, not
a creep's next step."""
MIN_TREND_Z = 1.0
"""The held days must still be rising, by this many standard errors of their slope: a
level that stepped up and stays is a drift (or a model that answers at more length),
not a creep."""
MAX_HELD_DAYS = 20
"""Days held this long are the user's new level, reported or not: they become the
reference rather than stay surprising forever."""
TEAM_SPREAD = 2.0
"""A member rising with their team is judged beyond it only past this many times the
median member's rise: members' own responses to a team-wide change vary about as much
as the change itself."""
RISE_KNOWN_DAYS = 5.0
"""Days in a member's reference before their team counts where their level stands
against it (``CreepSlot.rises``)."""

@dataclass(frozen=True, slots=True)
class Aspect:
    """What a day's level measures, and how much a day of a given size tells."""

    feature: str
    noun: str
    """The level in words, for an explanation."""
    half_weight: float
    """Size (active hours, or requests) at which a day weighs half an endless one: a
    day's noise falls as it averages more."""


HOURLY = Aspect("tokens_per_active_hour_by_day", "tokens per active hour", 4.0)
ANSWERS = Aspect("output_tokens_per_request_by_day", "output tokens per request", 10.0)
ANSWERS_PER_HOUR = Aspect("output_tokens_per_active_hour_by_day", "output tokens per active hour",
                          4.0)
"""Pace and answer size joined: requests per active hour times their output tokens
(geometric mean). A creep in pace alone leaves the answers' size where it was, and
tokens per active hour follows whichever conversations piled up context; their joint
level moves with both and varies less from day to day than tokens per hour."""
ASPECTS = (HOURLY, ANSWERS, ANSWERS_PER_HOUR)
TESTS = 2 * len(ASPECTS)
"""Mean and ramp in each aspect: the best of them is reported, so its tail is
multiplied by their number."""


class Days(Record):
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


def one_day(level: float, weight: float) -> Days:
    return Days(1.0, weight, level, 0.0)


class CreepTrack(Record):
    """One aspect's days: the reference, and the days held against it."""

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
    """The recent level (log10), exponentially weighted."""

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

    def jump_level(self, std: float) -> float:
        """Above this a day jumped: beyond both the reference and the recent days' level."""
        return max(self.reference.mean, self.recent) + MAX_DAY_Z * std


class CreepSlot(Slot):
    tracks: list[CreepTrack] = field(
        default_factory=lambda: [CreepTrack() for _ in ASPECTS])
    """One per aspect, in the order of ``ASPECTS`` (a slot stored with fewer aspects
    gains the later ones, fresh: see ``CreepDetector.observe``)."""
    day_requests: int = 0
    """The running day's requests so far, and their output tokens' summed log10 (its
    tokens and active hours are the context's: ``Observation.day_tokens``)."""
    day_output_logs: float = 0.0

    def rises(self) -> list[float | None]:
        """Each level's recent days over its reference (log10), None while the reference
        is young: what the team's median member is up by (``TeamState.members_rise``)."""
        return [track.recent - track.reference.mean
                if track.reference.count >= RISE_KNOWN_DAYS else None
                for track in self.tracks]

    def day_levels(self, tokens: int, hours: int) -> list[tuple[float, float] | None]:
        """Each aspect's (level, weight) of a day of ``tokens`` in ``hours`` active hours
        and the requests counted here, None where the day has none."""
        requests = self.day_requests
        if not requests:
            return [hourly_level(tokens, hours) if hours else None, None, None]
        answers = self.day_output_logs / requests
        if not hours:
            return [None, (answers, weight(ANSWERS, requests)), None]
        return [hourly_level(tokens, hours), (answers, weight(ANSWERS, requests)),
                (answers + math.log10(requests / hours), weight(ANSWERS_PER_HOUR, hours))]


def weight(aspect: Aspect, size: int) -> float:
    """How much a day of ``size`` (hours, or requests) tells, against an endless one."""
    return size / (size + aspect.half_weight)


def hourly_level(tokens: float, hours: int) -> tuple[float, float]:
    """Tokens per active hour (log10) and the day's weight: a short day (a late start)
    is not a drop."""
    return math.log10(tokens / hours + 1.0), weight(HOURLY, hours)


class CreepDetector(Detector):
    """Finds a sustained, gradual rise of tokens per active hour or of output tokens
    per request, day by day.

    Parameters
    ----------
    config
        Warm-up, CUSUM allowance, prior spreads and when the running day counts;
        see :class:`tokenradar.schemas.config.CreepConfig`.
    """

    declaration = CREEP
    slot_type = CreepSlot
    config: CreepConfig

    def __init__(self, config: CreepConfig) -> None:
        self.config = config
        # Answers per hour vary from day to day with the pace, as tokens per hour do.
        self._prior_std = {HOURLY: config.prior_day_std, ANSWERS: config.prior_output_std,
                           ANSWERS_PER_HOUR: config.prior_day_std}

    def observe(self, slot: CreepSlot, observation: Observation) -> Finding | None:
        finding = None
        while len(slot.tracks) < len(ASPECTS):
            slot.tracks.append(CreepTrack())
        if observation.closed_day is not None:
            finding = self._close_day(slot, observation.closed_day, team_rise(observation),
                                      observation.team_levels_rise)
            slot.day_requests, slot.day_output_logs = 0, 0.0
        slot.day_requests += 1
        slot.day_output_logs += math.log10(observation.event.output_tokens + 1.0)
        if (finding is None and not observation.team_shifting
                and observation.day_active_hours >= self.config.provisional_hours):
            # The running day, scored as if it closed now but not learned: a rise is
            # seen today, not at the next request (after a weekend, or never).
            finding = self._test_running_day(
                slot, slot.day_levels(observation.day_tokens, observation.day_active_hours),
                observation.team_levels_rise)
        return finding

    def _close_day(self, slot: CreepSlot, day: ClosedBucket, team: float | None,
                   members: Sequence[float]) -> Finding | None:
        levels = slot.day_levels(day.tokens, day.active_hours)
        findings = [self._close_track(aspect, track, *level, team, member)
                    for aspect, track, level, member in zip(
                        ASPECTS, slot.tracks, levels, members_rise(members), strict=True)
                    if level is not None]
        return best(findings)

    def _close_track(self, aspect: Aspect, track: CreepTrack, level: float, weight: float,
                     team: float | None, members: float) -> Finding | None:
        """Learn, hold or test one aspect's closed day (``team``: see ``team_rise``;
        ``members``: how far the team's median member is up in this level)."""
        config = self.config
        reference = track.reference
        if reference.count < config.min_history_days or team is None:
            # Once the whole team's shift is reported, what this member does with it is
            # the team's new normal, learned rather than tested: one population shift, not
            # N creeps.
            track.follow(level)
            track.learn(level, weight)
            return None
        std = self._reference_std(aspect, reference)
        if team > 0.0 and TEAM_SPREAD * members >= team:
            # The team rises toward a shift not reported yet, and its members' own levels
            # show it (a noisy team's summed days rise alone now and then: its members'
            # held creeps were learned away with them). A member rising no further
            # than the team is the team's shift: learned as their new normal. Rising
            # beyond it, their day waits, neither learned nor held: learned, it would
            # release what their own rise held so far (a team's typical member can be up
            # for a few days when several members have incidents at once); held, the
            # team's ramp would be counted in their creep. The recent level follows, so
            # their next day is not taken for a jump.
            track.follow(level)
            if level - reference.mean <= team + config.slack * std:
                track.learn(level, weight)
            return None
        finding = None
        if level > track.jump_level(std):
            # A jump, not a creep's next step: an incident of its own (a spike, a loop, an
            # agent) for other detectors, left out of the held days and the recent level.
            # Learned (clipped) when nothing is held, so a lasting new level is adopted.
            if track.cusum == 0.0:
                track.learn(reference.mean + MAX_DAY_Z * std, weight)
                return None
            track.jumps += 1
        else:
            track.follow(level)
            track.cusum = max(0.0, track.cusum + weight * ((level - reference.mean) / std
                                                           - config.slack))
            track.hold(level, weight)
            if track.cusum == 0.0:
                track.release()
                return None
            finding = self._test(aspect, track, members)
        if track.held.count + track.jumps >= MAX_HELD_DAYS:
            track.release()
        return finding

    def _reference_std(self, aspect: Aspect, reference: Days) -> float:
        """The reference's day-to-day spread (for a day of weight 1), shrunk toward the
        prior: a week of days underestimates it as often as not."""
        prior = self.config.prior_days
        return math.sqrt((prior * self._prior_std[aspect] ** 2 + reference.squares)
                         / (prior + max(0.0, reference.count - 1.0)))

    def _test_running_day(self, slot: CreepSlot, levels: list[tuple[float, float] | None],
                          members: Sequence[float]) -> Finding | None:
        """The held days and the running day (its ``levels``), as if it closed now
        (nothing is learned)."""
        findings = []
        for aspect, track, level, member in zip(ASPECTS, slot.tracks, levels,
                                                members_rise(members), strict=True):
            if track.cusum <= 0 or level is None:
                continue
            if level[0] > track.jump_level(self._reference_std(aspect, track.reference)):
                continue
            trial = replace(track, held=replace(track.held))
            trial.follow(level[0])
            trial.hold(*level)
            findings.append(self._test(aspect, trial, member))
        return best(findings)

    def _test(self, aspect: Aspect, track: CreepTrack, members: float) -> Finding | None:
        """The held days against the reference: their mean, and their ramp. The recent
        level must be ``min_ratio`` over the reference beyond where the team's median
        member is (``members``): when a team's answers or pace move together (a new
        model, a push), each member's own quiet level rises with them, and their steadiest
        members' rise is sure long before the team's days are (every false creep traced
        on full-size organisations 1, 11 and 12 was a member of a team shifting so)."""
        config = self.config
        reference, held = track.reference, track.held
        std = self._reference_std(aspect, reference)
        ratio = 10.0 ** (track.recent - reference.mean)
        if (held.count < config.min_rising_days
                or ratio < config.min_ratio * 10.0 ** (TEAM_SPREAD * max(0.0, members))
                or trend_z(track, std) < MIN_TREND_Z):
            return None
        # Each test's variance has the held days' noise and the reference mean's.
        mean_z = (held.mean - reference.mean) / (
            std * math.sqrt(1.0 / held.weight + 1.0 / reference.weight))
        ramp_z = track.ramp / (std * math.sqrt(track.ramp_squares
                                               + track.ramp_days ** 2 / reference.weight))
        decades = normal_tail_decades(max(mean_z, ramp_z)) - math.log10(TESTS)
        old = 10.0 ** reference.mean
        return Finding(
            score=decades_score(decades),
            feature=aspect.feature, observed=old * ratio, expected=old,
            explanation=(
                f"Usage has risen over {held.count:.0f} active days to {old * ratio:,.0f} "
                f"{aspect.noun}, {ratio:.2f}x this user's earlier {old:,.0f}, "
                f"while their team as a whole did not."
            ),
        )


def team_rise(observation: Observation) -> float | None:
    """The member's team: 0 when it does not shift; how far (log10) it is up while it
    rises toward a shift not reported yet; None once its shift was reported and it still
    moves."""
    if not observation.team_shifting:
        return 0.0
    return observation.team_rise if observation.team_rise > 0.0 else None


def members_rise(members: Sequence[float]) -> Sequence[float]:
    """The team's median member's rise in each level (``Observation.team_levels_rise``),
    0 in each while the team does not say."""
    return members if len(members) == len(ASPECTS) else (0.0,) * len(ASPECTS)


def trend_z(track: CreepTrack, std: float) -> float:
    """The held days' own slope (weighted least squares of level on day number), in
    standard errors."""
    total, days, squares = track.held.weight, track.ramp_days, track.ramp_squares
    spread = total * squares - days * days
    if spread <= 0.0:
        return 0.0
    # The ramp is taken over the frozen reference mean: add it back for the levels.
    levels_by_day = track.ramp + track.reference.mean * days
    slope = (total * levels_by_day - days * total * track.held.mean) / spread
    return slope / (std * math.sqrt(total / spread))


def best(findings: list[Finding | None]) -> Finding | None:
    """The highest-scoring finding, if any."""
    return max((f for f in findings if f is not None), key=lambda f: f.score, default=None)
