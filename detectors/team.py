"""The team: a peer group's movement, and population shifts reported once per team.

Each member's closed day is added to the team's day: what the member used (capped
at three of their usual days) against what they usually use. The team's movement is
the median of its members' day ratios: a shift moves the many, while one member's
incident, however big, moves one of them (a heavy member's weekend agent must not
make a small team a shift, nor should members' own incidents, or the alerts they
raise during a real shift, hide it). When a team's median stays above its members'
usual levels for several days, more than its own day-to-day noise explains, that is
one ``population_shift`` alert for ``team:<team>``; meanwhile the members' own
detectors expect the team's movement (their summed usage over their summed usual)
instead of alerting on each of them. The pooled per-request and per-hour baselines
give new joiners a cold start.
"""

from __future__ import annotations

import math
import statistics

import msgspec
from msgspec import field

from tokenradar.detectors import records
from tokenradar.detectors.base import Finding
from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.budget import BudgetState
from tokenradar.detectors.calibration import decades_score, normal_tail_decades
from tokenradar.detectors.context import digest32
from tokenradar.detectors.records import Record
from tokenradar.detectors.renormalisation import DailyMaxima
from tokenradar.detectors.state import Incident
from tokenradar.schemas.config import PopulationShiftConfig

RECENT_FADING = 0.5
"""The team's current movement remembers its last few days."""
NOISE_FADING = 0.05
"""Day-to-day variation of the team's ratio, learned over weeks of quiet days."""
POOL_FADING = 0.01
MAX_MEMBERS = 512
MAX_MEMBER_RATIOS = 4096
"""Member-days of one team-day whose ratios are kept for its median: the first ones
closed. A team key shared by thousands keeps a changelog record of bounded size."""
MEMBER_DAY_CAP = 3.0
MIN_LOG_STD = 0.05
PRIOR_NOISE_STD = 0.05
PRIOR_NOISE_DAYS = 3.0
"""A team's day-to-day spread (log10) before its own days show it, and how many days
that guess weighs: a team's few quiet days can look steadier than the team is."""
MIN_QUIET_DAYS = 3
CLOSE_HOUR = 12
MOVING = math.log10(1.15)
"""Below this the team is not moving, and members are judged on their own."""
SHIFTING = math.log10(1.25)
"""At this the team's movement is a shift under way, even before its days without their
biggest movers are up (``shifting``)."""
HOURS_FADING = 0.02
MIN_MEMBER_DAYS = 20
"""Members' active days before the team's hours speak for a young member's."""
MAX_TOOLS = 64
"""Models and clients a team remembers; past this, the one fewest members used goes."""
TOOL_MEMBERS = 3
"""Members remembered per model or client: enough to tell "other members use it"..."""
MIN_OTHER_MEMBERS = 2
"""...which takes two of them besides the user."""
CODEC_VERSION = 2
"""2: a :class:`TeamState` record (:mod:`tokenradar.detectors.records`); 1 (still read):
release ae4055c's JSON lists (:mod:`tokenradar.detectors.legacy`)."""


def tool_key(what: str, name: str) -> int:
    """A model's or client's digest (``what``: "model" or "client"), as users and teams
    remember them."""
    return digest32(f"{what}:{name}")


def used_by_others(tools: dict[int, list[int]], member: int, key: int) -> bool:
    """Have members other than ``member`` used the model or client ``key`` (``tools``: a
    team's ``TeamState.tools``)? Two at least: one member's stolen key must not make what
    its thief used the team's own."""
    return sum(user != member for user in tools.get(key, ())) >= MIN_OTHER_MEMBERS


def team_key(team: str) -> str:
    """The user id and message key of a team's own alerts, as the contract says."""
    return f"team:{team}"


class TeamDay(Record):
    """The team's open day: what its members' closed days added up to."""

    number: int = -1
    tokens: float = 0.0
    """The members' tokens, each capped at MEMBER_DAY_CAP of their usual..."""
    usual: float = 0.0
    """...their usual tokens..."""
    members: int = 0
    """...and how many members' days were added."""


class TeamState(Record):
    team: str
    day: TeamDay = field(default_factory=TeamDay)
    member_ratios: list[float] = []
    """Each member's day of the team's open day, log10 of (capped) tokens over usual."""
    recent: EWStats = field(default_factory=EWStats)
    """log10 of the team's days over its members' usual (RECENT_FADING)."""
    noise: EWStats = field(default_factory=EWStats)
    """The median member ratio of the team's quiet days (NOISE_FADING)."""
    up_days: int = 0
    evidence: float = 0.0
    """Surprise (decades) of the current run of up days, each judged by the team's noise."""
    per_request: EWStats = field(default_factory=EWStats)
    """The members' log10 tokens per request, pooled (POOL_FADING)..."""
    per_hour: EWStats = field(default_factory=EWStats)
    """...and per closed active hour."""
    members: list[str] = []
    """The last MAX_MEMBERS members seen, oldest first."""
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

    def see_member(self, user_id: str) -> None:
        if user_id not in self.members:
            self.members.append(user_id)
            if len(self.members) > MAX_MEMBERS:
                del self.members[0]

    def learn_member_hours(self, hours_mask: int) -> None:
        """Learn which hours (of its own local time) a member of the team works in, from
        one of their active days (``hours_mask``: bit h for local hour h)."""
        self.member_days += 1
        rate = max(HOURS_FADING, 1.0 / self.member_days)
        self.hour_profile = [round(p + rate * (((hours_mask >> h) & 1) - p), 4)
                             for h, p in enumerate(self.hour_profile)]

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

    def learn_member_day(self, day: int, tokens: float, usual: float,
                         config: PopulationShiftConfig) -> Finding | None:
        """Add one member's closed day; a finding when the team's movement is a shift."""
        finding = None
        if day > self.day.number:
            finding = self._close_day(config)
            self._open_day(day)
        # A member whose day closes after the team's closed is counted in the next one.
        capped = min(tokens, MEMBER_DAY_CAP * usual)
        self.day.tokens += capped
        self.day.usual += usual
        self.day.members += 1
        if len(self.member_ratios) < MAX_MEMBER_RATIOS:
            self.member_ratios.append(math.log10((capped + 1.0) / (usual + 1.0)))
        return finding

    def _open_day(self, day: int) -> None:
        self.day = TeamDay(day)
        self.member_ratios = []

    def advance(self, member_day: int, member_hour: int,
                config: PopulationShiftConfig) -> Finding | None:
        """Close the team's day once a member is past noon of the next day.

        A member's day closes at their next request, usually the next morning; by
        noon most of the team's have. Waiting for the next member-day of the day
        after would cost the team a whole extra day of lag.
        """
        if member_day > self.day.number >= 0 and member_hour >= CLOSE_HOUR and self.day.members:
            finding = self._close_day(config)
            self._open_day(self.day.number + 1)
            return finding
        return None

    def _close_day(self, config: PopulationShiftConfig) -> Finding | None:
        tokens, usual, members = self.day.tokens, self.day.usual, self.day.members
        if members < config.min_members or usual <= 0:
            return None
        # Members expect the team's whole movement; a shift is judged by its median.
        self.recent.update(math.log10((tokens + 1.0) / usual), RECENT_FADING)
        ratio = statistics.median(self.member_ratios)
        if ratio < math.log10(config.min_ratio):
            self.up_days, self.evidence = 0, 0.0
            self.noise.update(ratio, NOISE_FADING)
            return None
        self.up_days += 1
        seen = self.noise.count
        spread = max(MIN_LOG_STD, math.sqrt(
            (seen * self.noise.var + PRIOR_NOISE_DAYS * PRIOR_NOISE_STD**2)
            / (seen + PRIOR_NOISE_DAYS)))
        self.evidence += normal_tail_decades((ratio - self.noise.mean) / spread)
        if self.up_days < config.min_days or self.noise.count < MIN_QUIET_DAYS:
            # A team whose quiet days have not been seen yet has no noise to judge by.
            return None
        times = 10.0 ** self.recent.mean
        return Finding(
            score=decades_score(self.evidence),
            feature="team_tokens_vs_member_baselines", observed=times, expected=1.0,
            explanation=(
                f"Team {self.team} as a whole has used {times:.1f}x its members' own usual "
                f"levels for {self.up_days} days ({int(members)} members active): a "
                "population change such as an adoption push, reported once for the team."
            ),
        )

    def expected_shift(self) -> float:
        """The team's current upward movement (log10) members should be judged against."""
        return self.recent.mean if self.recent.count and self.recent.mean >= MOVING else 0.0

    def shifting(self, time: float) -> bool:
        """Is the team in a population shift, not just moving? A team of a dozen is 1.15x
        its members' usual one day in ten (one heavy member's day can do it alone), so it
        must move by a quarter, or be up on its last day even without its biggest mover,
        or have been alerted as a shift within the alert's cooldown (and still move)."""
        shift = self.expected_shift()
        alerted = self.incident is not None and time < self.incident.until
        return shift >= SHIFTING or (shift > 0 and (self.up_days > 0 or alerted))

    def to_bytes(self) -> bytes:
        return records.encode(CODEC_VERSION, self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> TeamState:
        if raw[:1] == b"{":  # JSON: stored by release ae4055c or before
            from tokenradar.detectors import legacy  # it builds this module's records

            return legacy.team_state(raw)
        return records.decode(raw, CODEC_VERSION, _DECODER, "team state")


_DECODER = msgspec.msgpack.Decoder(TeamState)
