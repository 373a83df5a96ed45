"""The team: a peer group's movement, and population shifts reported once per team.

Each member's closed day is added to the team's day: what the member used (capped
at three of their usual days) against what they usually use, the team's movement
that members' own detectors expect (``expected_shift``).

A shift is judged on working days only (a weekend's look-in is no day's work), by a
member's requests and tokens of the day, each against their own usual working day,
which the team keeps (``levels``): a team adopting AI asks more, or more at a time (and
its extra requests spill into more of its hours, so a day's count, not a count per
active hour, carries the whole change). Each working day's typical member, the mean
of its members' levels over their usual once each is clipped near their median (a
shift moves the many; one member's incident moves one of them by a bounded step), is
judged with the standard error its members' own spread gives it that day, and the last
few working days pooled by their precision (a day of many members weighs more than a
day of few) with that error and the error of the members' usual levels themselves.
When that level is both high and sure, that is one ``population_shift`` alert for
``team:<team>``, and the new level becomes its members' usual. While the team
rises, its members' days are not learned as their usual (a shift must not hide itself),
a day with too few members to judge waits for the next day's, and members' creep waits
(``shifting``).

What this can see: the day's clipped mean of m members strays by about 1.05 sigma /
sqrt(m) for normal members (sigma: one member's day-to-day spread, 0.3 log10 for
requests and 0.45 for tokens in the simulated organisations), but members' days have
heavier tails, so it is judged as a median's 1.25 sigma / sqrt(m) (MEAN_ERROR): a shift
of 1.5x (0.18 log10) in tokens takes about (3.5 x 1.25 x 0.45 / 0.18)^2 = 120
member-days to be sure of, in requests about 50. That is near what any test could do:
knowing each member's exact usual level, the spread and the ramp's shape, the best test
on the member-days judged by a shift's deadline would find 11.4 of full-size matrix
organisations 1, 2, 4, 7, 10 and 11's 21 shifts in time at z 3.5, and 0.5-0.6 of the 2
of organisations 4, 7 and 11, whose shifted teams have 10-48 such member-days
(``bench/shift_bound.py``).

The pooled per-request and per-hour baselines give new joiners a cold start.
"""

from __future__ import annotations

import functools
import math
import statistics
from typing import Any

import msgspec
from msgspec import field

from tokenradar.detectors import records
from tokenradar.detectors.base import ClosedBucket, Finding
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.budget import BudgetState
from tokenradar.detectors.calibration import tail_score
from tokenradar.detectors.context import digest32
from tokenradar.detectors.records import Record
from tokenradar.detectors.renormalisation import DailyMaxima
from tokenradar.detectors.state import Incident
from tokenradar.schemas.config import PopulationShiftConfig

RECENT_FADING = 0.5
"""The team's current movement remembers its last few days."""
LEVEL_FADING = 0.1
"""A member's usual working day remembers their last few weeks of working days."""
MIN_LEVEL_DAYS = 3
"""A member's working days before their day counts in the team's."""
WINDOW_DAYS = 5
"""The team's last judged working days, whose mean is tested (from ``min_days`` of them)."""
CLIP = 1.5
"""Members' levels over their usual are clipped to their median plus or minus this many
spreads (winsorised) before they are averaged: one member's incident moves the day's
mean by a bounded step, as it would move its median."""
MEAN_ERROR = 1.25
"""The day's clipped mean is judged as straying this many times the members' spread over
sqrt(m). For normal members it strays 1.05 times, but members' days have heavier tails:
at 1.05, five full-size matrix organisations (1, 3, 5, 9, 12) raised 12 false team shifts
against 3 at 1.25, for the same 6 shifts found in time."""
PRIOR_SPREAD = 0.35
PRIOR_SPREAD_DAYS = 5.0
"""Members' spread (log10) around their usual working day before the team's own judged
days show it (a member's working days spread 0.3-0.45), and how many days it weighs."""
SPREAD_FADING = 0.1
MIN_MEMBER_SPREAD = 0.1
"""Members' spread (log10) is taken as at least this: machines repeat their days."""
MACHINE_HOURS = 20
"""A day active in this many hours is a machine's (no person works them), not a member's
working day: a team's service accounts changing their jobs are no adoption push."""
HOLD_Z = 1.0
"""A working day whose typical member is this many standard errors up is not learned as
the members' usual: it may be a shift's first; nor one while the team is rising
(SHIFTING, SHIFTING_Z)."""
MAX_HELD_DAYS = 10
"""Working days held in a row, at most: a rise that is no shift by then is the usual."""
POOL_FADING = 0.01
MAX_MEMBERS = 512
MAX_MEMBER_RATIOS = 4096
"""Member-days of one team-day whose ratios are kept for its median: the first ones
closed. A team key shared by thousands keeps a changelog record of bounded size."""
MEMBER_DAY_CAP = 3.0
CLOSE_HOUR = 10
"""The hour of the next day at which a team's day is judged (see ``TeamState.advance``)."""
MOVING = math.log10(1.15)
"""Below this the team is not moving, and members are judged on their own."""
SHIFTING = math.log10(1.25)
SHIFTING_Z = 2.0
"""A rise at least this high (log10), this sure (z), is a shift under way before it is
reported (``shifting``)."""
HOURS_FADING = 0.02
MIN_MEMBER_DAYS = 20
"""Members' active days before the team's hours speak for a young member's."""
MIN_RISE_MEMBERS = 4
"""Members' levels a team day needs before its median member says how the team moves."""
MAX_TOOLS = 64
"""Models and clients a team remembers; past this, the one fewest members used goes."""
TOOL_MEMBERS = 3
"""Members remembered per model or client: enough to tell "other members use it"..."""
MIN_OTHER_MEMBERS = 2
"""...which takes two of them besides the user."""
CODEC_VERSION = 4
"""4: a :class:`TeamState` record (:mod:`tokenradar.detectors.records`); 3 (still read):
the same with the last members seen (written, never read); 2 (still read): the same with
four more fields no longer read; 1 (still read): release ae4055c's JSON lists
(:mod:`tokenradar.detectors.legacy`)."""


@functools.lru_cache(maxsize=1024)
def tool_key(what: str, name: str) -> int:
    """A model's or client's digest (``what``: "model" or "client"), as users and teams
    remember them; read for every event, of a few names, so kept for those met lately."""
    return digest32(f"{what}:{name}")


def used_by_others(tools: dict[int, list[int]], member: int, key: int) -> bool:
    """Have members other than ``member`` used the model or client ``key`` (``tools``: a
    team's ``TeamState.tools``)? Two at least: one member's stolen key must not make what
    its thief used the team's own."""
    return sum(user != member for user in tools.get(key, ())) >= MIN_OTHER_MEMBERS


def team_key(team: str) -> str:
    """The user id and message key of a team's own alerts, as the contract says."""
    return f"team:{team}"


def is_working_day(day: int) -> bool:
    """Monday to Friday (day 0, 1970-01-01, was a Thursday)."""
    return (day + 3) % 7 < 5


class MemberLevel(Record):
    """A member's usual working day, as their team judges its shifts by it."""

    days: int = 0
    requests: float = 0.0
    """log10 requests of a working day (LEVEL_FADING)..."""
    tokens: float = 0.0
    """...and log10 tokens."""


class ShiftDay(Record):
    """One judged working day of the team: for requests and tokens, the median member's
    day over their usual (log10) and that median's variance; and the members' mean
    1/days, how much their usual levels are themselves a guess."""

    requests: float
    requests_var: float
    tokens: float
    tokens_var: float
    guess: float


def _medians(levels: list[list[float]]) -> list[float]:
    """The median of each level's members, 0 for a level of fewer than MIN_RISE_MEMBERS;
    empty when no level has that many."""
    if all(len(members) < MIN_RISE_MEMBERS for members in levels):
        return []
    return [round(statistics.median(members), 4) if len(members) >= MIN_RISE_MEMBERS else 0.0
            for members in levels]


def _clipped_mean_and_spread(residuals: list[float]) -> tuple[float, float]:
    """The mean of members' levels over their usual, each clipped to CLIP spreads of
    their median (the spread: the median absolute deviation, as a normal spread, at
    least MIN_MEMBER_SPREAD), and the clipped levels' own spread (standard deviation)."""
    median = statistics.median(residuals)
    mad = 1.4826 * statistics.median(abs(r - median) for r in residuals)
    bound = CLIP * max(mad, MIN_MEMBER_SPREAD)
    clipped = [min(max(r, median - bound), median + bound) for r in residuals]
    return statistics.fmean(clipped), statistics.stdev(clipped) if len(clipped) > 1 else 0.0


class TeamDay(Record):
    """The team's open day: what its members' closed days added up to."""

    number: int = -1
    tokens: float = 0.0
    """The members' tokens, each capped at MEMBER_DAY_CAP of their usual..."""
    usual: float = 0.0
    """...their usual tokens..."""
    members: int = 0
    """...and how many members' days were added."""


class TeamState(Record, dict=True, gc=True):
    """A team's state. ``dict=True``: it also keeps, unstored, its median member's rise as
    last worked out (``median_rise``, for ``members_rise``: asked on every event, changed
    once a member-day), and so is tracked by the garbage collector (msgspec's rule for a
    ``__dict__``): one object a team."""

    team: str
    day: TeamDay = field(default_factory=TeamDay)
    recent: EWStats = field(default_factory=EWStats)
    """log10 of the team's days over its members' usual (RECENT_FADING)."""
    per_request: EWStats = field(default_factory=EWStats)
    """The members' log10 tokens per request, pooled (POOL_FADING)..."""
    per_hour: EWStats = field(default_factory=EWStats)
    """...and per closed active hour."""
    incident: Incident | None = None
    hour_profile: list[float] = field(default_factory=lambda: [0.0] * 24)
    """Share of the members' active days with a request in each hour of their local time."""
    member_days: int = 0
    """Members' active days behind ``hour_profile``."""
    maxima: DailyMaxima = field(default_factory=DailyMaxima)
    """The members' highest score of each active day, per detector: the team's own
    measure of how high its ordinary days go (:mod:`tokenradar.detectors.renormalisation`)."""
    budget: BudgetState | None = None
    """The team's monthly budget's spend, when the configuration gives it one."""
    tools: dict[int, list[int]] = {}
    """Models and clients the members use (``tool_key``) -> the first TOOL_MEMBERS members
    (``digest32`` of their user id) seen using each: what is ordinary in the team..."""
    tool_days: int = 0
    """...learned over this many of its members' active days (a state stored before the
    team learned them starts at none)."""
    levels: dict[int, MemberLevel] = {}
    """Each member's usual working day, by ``digest32`` of their user id (at most
    MAX_MEMBERS, the latest added)."""
    day_levels: list[tuple[int, float, float]] = []
    """The open day's members' working days: (``digest32`` of the user id, requests,
    tokens), log10."""
    shift_days: list[ShiftDay] = []
    """The team's last WINDOW_DAYS judged working days."""
    held_days: int = 0
    """Judged working days in a row that rose, not learned as members' usual."""
    rise: float = 0.0
    """The team's level over its members' usual (log10), over the surest of its last
    working days, when last judged..."""
    rise_z: float = 0.0
    """...and how sure that is (its z)."""
    requests_spread: EWStats = field(default_factory=EWStats)
    """The square of members' spread around their usual requests, over judged days..."""
    tokens_spread: EWStats = field(default_factory=EWStats)
    """...and around their usual tokens (SPREAD_FADING)."""
    levels_day: int = -1
    """The day (a member's local day number) whose members' recent levels are gathered
    in ``day_rises``; the members' own detectors say what a level is (``creep``)..."""
    day_rises: list[list[float]] = []
    """...each member's recent level over their own reference (log10), one list per
    level, of the members whose day ``levels_day`` closed..."""
    rises: list[float] = []
    """...and the median member's, per level, of the last day with at least
    MIN_RISE_MEMBERS members."""

    def learn_member_hours(self, hours_mask: int) -> None:
        """Learn which hours (of its own local time) a member of the team works in, from
        one of their active days (``hours_mask``: bit h for local hour h)."""
        self.member_days += 1
        rate = max(HOURS_FADING, 1.0 / self.member_days)
        self.hour_profile = [round(p + rate * (((hours_mask >> h) & 1) - p), 4)
                             for h, p in enumerate(self.hour_profile)]

    def learn_member_rises(self, day: int, rises: list[float | None]) -> None:
        """Add a member's recent levels over their reference (None where not known yet)
        as of their closed ``day``; the first member of a later day closes the gathered
        one, whose median members become ``rises``."""
        self.__dict__.pop("median_rise", None)
        if day > self.levels_day:
            if _medians(self.day_rises):
                self.rises = _medians(self.day_rises)
            self.levels_day, self.day_rises = day, [[] for _ in rises]
        if len(self.day_rises) != len(rises) or len(self.day_rises[0]) >= MAX_MEMBERS:
            return
        for levels, rise in zip(self.day_rises, rises, strict=True):
            if rise is not None:
                levels.append(round(rise, 4))

    def members_rise(self) -> list[float]:
        """How far (log10) the team's median member is up over their own reference in each
        level: the higher of the last gathered day's and the open one's so far; empty while
        no day had enough members."""
        known: list[float] | None = self.__dict__.get("median_rise")
        if known is None:
            known = self.__dict__["median_rise"] = self._members_rise()
        return known

    def _members_rise(self) -> list[float]:
        gathering = _medians(self.day_rises)
        if not gathering or len(self.rises) != len(gathering):
            return gathering or self.rises
        return [max(last, now) for last, now in zip(self.rises, gathering, strict=True)]

    def learn_tool(self, member: int, key: int) -> None:
        """Remember that ``member`` (a user id's digest) used the model or client ``key``."""
        users = self.tools.get(key)
        if users is None:
            if len(self.tools) >= MAX_TOOLS:
                rarest = min(self.tools, key=lambda k: len(self.tools[k]))
                del self.tools[rarest]
            users = self.tools[key] = []
        if len(users) < TOOL_MEMBERS and member not in users:
            users.append(member)

    def working_hours(self) -> list[float] | None:
        """The team's hour profile, once enough member-days stand behind it."""
        return self.hour_profile if self.member_days >= MIN_MEMBER_DAYS else None

    def learn_member_day(self, member: str, day: ClosedBucket, usual: float | None,
                         config: PopulationShiftConfig) -> Finding | None:
        """Add one member's closed day (``usual``: their usual tokens a day, None while
        young); a finding when the team's movement is a shift."""
        finding = None
        number = int(day.start)
        if number > self.day.number:
            finding = self._close_day(config)
            self._open_day(number)
        # A member whose day closes after the team's closed is counted in the next one.
        if usual is not None:
            self.day.tokens += min(day.tokens, MEMBER_DAY_CAP * usual)
            self.day.usual += usual
            self.day.members += 1
        if (is_working_day(number) and day.requests and day.active_hours < MACHINE_HOURS
                and len(self.day_levels) < MAX_MEMBER_RATIOS):
            self.day_levels.append((digest32(member), round(math.log10(day.requests), 4),
                                    round(math.log10(day.tokens + 1.0), 4)))
        return finding

    def _open_day(self, day: int) -> None:
        """Open the team's next day (the closed day's working days were judged and
        learned, or are carried into this one)."""
        self.day = TeamDay(day)

    def advance(self, member_day: int, member_hour: int,
                config: PopulationShiftConfig) -> Finding | None:
        """Close the team's day once a member is past CLOSE_HOUR of the next day.

        A member's day closes at their next request, usually the next morning; by
        mid-morning most of a working team's have, and those that close later are judged
        with the next day's. Waiting for the next member-day of the day after would cost
        the team a whole extra day of lag; each hour waited is an hour later reported.
        """
        if (member_day > self.day.number >= 0 and member_hour >= CLOSE_HOUR
                and (self.day.members or self.day_levels)):
            finding = self._close_day(config)
            self._open_day(self.day.number + 1)
            return finding
        return None

    def _close_day(self, config: PopulationShiftConfig) -> Finding | None:
        tokens, usual, members = self.day.tokens, self.day.usual, self.day.members
        if members >= config.min_members and usual > 0:
            # Members' own detectors expect the team's whole movement.
            self.recent.update(math.log10((tokens + 1.0) / usual), RECENT_FADING)
        if not self.day_levels:
            return None
        known = [(self.levels[member], requests, tokens)
                 for member, requests, tokens in self.day_levels
                 if member in self.levels and self.levels[member].days >= MIN_LEVEL_DAYS]
        rising = False
        if len(known) >= config.min_members:
            in_requests = self._judge([r - level.requests for level, r, _ in known],
                                      self.requests_spread)
            in_tokens = self._judge([t - level.tokens for level, _, t in known],
                                    self.tokens_spread)
            guess = sum(1.0 / level.days for level, _, _ in known) / len(known)
            self.shift_days = [*self.shift_days,
                               ShiftDay(*in_requests, *in_tokens, guess)][-WINDOW_DAYS:]
            self.rise_z, self.rise, days = self._surest_rise(config.min_days)
            if self.rise_z >= config.min_z and self.rise >= math.log10(config.min_ratio):
                self.day_levels = []
                return self._report(days, len(known))
            # A shift under way goes on through a day of its own noise (a few members' slow
            # day): its last working days' mean is still surely up.
            rising = max(in_requests[0] / math.sqrt(in_requests[1]),
                         in_tokens[0] / math.sqrt(in_tokens[1])) >= HOLD_Z or self.rising()
        elif 0 < self.held_days < MAX_HELD_DAYS:
            # Too few members to judge while the team rises: their days are judged with
            # the next day's, neither learned as their usual nor ending the rise.
            self.held_days += 1
            return None
        if not rising:
            self.held_days = 0
            self._learn_levels()
        elif self.held_days < MAX_HELD_DAYS:
            self.held_days += 1
        else:  # no shift by now: the rise is its members' usual
            self._adopt()
        self.day_levels = []
        return None

    @staticmethod
    def _judge(residuals: list[float], spread: EWStats) -> tuple[float, float]:
        """The day's (clipped) mean member over their usual, and its variance: from the
        members' spread that day or the team's usual one, whichever is wider (a few members
        of a day can agree by chance); then the day's spread is learned."""
        mean, day_spread = _clipped_mean_and_spread(residuals)
        usual = ((spread.count * spread.mean + PRIOR_SPREAD_DAYS * PRIOR_SPREAD**2)
                 / (spread.count + PRIOR_SPREAD_DAYS))
        spread.update(day_spread**2, SPREAD_FADING)
        widest = max(day_spread**2, usual, MIN_MEMBER_SPREAD**2)
        return mean, MEAN_ERROR**2 * widest / len(residuals)

    def _surest_rise(self, min_days: int) -> tuple[float, float, int]:
        """(z, level, days) of the surest mean of the last working days (at least
        ``min_days``), in requests or tokens.

        The days are pooled by their precision (1 / variance): a day of twenty members
        weighs as much as five days of four, as their member-days do, where a plain mean of
        the days would give a Monday's four members the weight of a Tuesday's twenty. Its
        error is the pooled days' own, plus the members' usual levels' (which the days
        share, so it does not average out)."""
        best = (0.0, 0.0, 0)
        for days in range(min_days, len(self.shift_days) + 1):
            window = self.shift_days[-days:]
            guess = sum(day.guess for day in window) / days
            for pairs in ([(day.requests, day.requests_var) for day in window],
                          [(day.tokens, day.tokens_var) for day in window]):
                precision = sum(1.0 / variance for _, variance in pairs)
                level = sum(value / variance for value, variance in pairs) / precision
                z = level / math.sqrt((1.0 + days * guess) / precision)
                best = max(best, (z, level, days))
        return best

    def _report(self, days: int, members: int) -> Finding:
        """The shift, found over the last ``days`` working days: its last day's level
        becomes the members' usual, so it is reported once."""
        last = self.shift_days[-1]
        self._adopt()
        return Finding(
            score=tail_score(self.rise_z),
            feature="team_working_day_vs_member_baselines", observed=10.0 ** self.rise,
            expected=1.0,
            explanation=(
                f"Team {self.team}'s members have worked at {10.0 ** self.rise:.1f}x their "
                f"own usual requests or tokens a working day over its last {days} working "
                f"days, and at {10.0 ** last.requests:.1f}x their requests and "
                f"{10.0 ** last.tokens:.1f}x their tokens on the last (the median of {members} "
                "members): a population change such as an adoption push, reported once "
                "for the team."
            ),
        )

    def _adopt(self) -> None:
        """The team's last judged working day is its members' usual now: their levels
        move by its median member's (a ramp may go on after it is found; that day is the
        latest known level), and the judged days start again."""
        last = self.shift_days[-1]
        for level in self.levels.values():
            level.requests = round(level.requests + last.requests, 4)
            level.tokens = round(level.tokens + last.tokens, 4)
        self.shift_days, self.held_days = [], 0

    def _learn_levels(self) -> None:
        """Learn the open day's working days as each member's usual.

        A member's first working day the team sees is only noted: it is usually partial
        (they joined, or the team began listening, mid-day). On full-size matrix
        organisation 1 a member's first working day is 0.15 log10 below their sixth to
        tenth in requests (0.19 in tokens; their second, 0.05): the levels of 3-5 days
        that held it were low, and a team whose members were all that young (the weeks
        after a deployment) rose by it: a false population shift."""
        for member, requests, tokens in self.day_levels:
            level = self.levels.get(member)
            if level is None:
                self.levels[member] = MemberLevel()
                if len(self.levels) > MAX_MEMBERS:
                    del self.levels[next(iter(self.levels))]
                continue
            level.days += 1
            rate = max(LEVEL_FADING, 1.0 / level.days)
            level.requests = round(level.requests + rate * (requests - level.requests), 4)
            level.tokens = round(level.tokens + rate * (tokens - level.tokens), 4)

    def expected_shift(self) -> float:
        """The team's current upward movement (log10) members should be judged against."""
        return self.recent.mean if self.recent.count and self.recent.mean >= MOVING else 0.0

    def shifting(self, time: float) -> bool:
        """Is the team in a population shift, not just moving? Its members' typical working
        day must be rising, by SHIFTING and surely (SHIFTING_Z), or the team have been
        alerted as a shift within the alert's cooldown and still move. The team's summed
        tokens alone do not say so: one member's creep moves them in a small team (a team
        of four, one member at twice their usual is 1.25x), and would be learned away."""
        alerted = self.incident is not None and time < self.incident.until
        return self.rising() or (alerted and self.expected_shift() > 0)

    def rising(self) -> bool:
        """Are the team's last working days surely up (SHIFTING, SHIFTING_Z), as of a
        day that was not learned? Its shift is under way, not reported yet."""
        return self.held_days > 0 and self.rise >= SHIFTING and self.rise_z >= SHIFTING_Z

    def rising_by(self) -> float:
        """How far (log10) the team is up while it rises (``rising``), 0 otherwise: the
        higher of its last working days' rise and its last judged day's, in requests or
        tokens. A member rising no further is rising with the team (``creep``)."""
        if not self.rising():
            return 0.0
        last = self.shift_days[-1]
        return max(self.rise, last.requests, last.tokens)

    def to_bytes(self) -> bytes:
        return records.encode(CODEC_VERSION, self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> TeamState:
        if raw[:1] == b"{" or records.stored_version(raw) in (2, 3):  # an older release's
            from tokenradar.detectors import legacy  # it builds this module's records

            return legacy.team_state(raw)
        return records.decode(raw, CODEC_VERSION, _DECODER, "team state")

    @classmethod
    def from_fields(cls, values: list[Any]) -> TeamState:
        """The state from its fields as plain values, exactly as if stored and read."""
        return _DECODER.decode(msgspec.msgpack.encode(values))


_DECODER = msgspec.msgpack.Decoder(TeamState)
