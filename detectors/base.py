"""What every detector shares: the observation it reads and the finding it returns.

A detector holds parameters only and is shared by all users; each user's numbers
live in a *slot* of that user's :class:`~tokenradar.detectors.state.UserState`: a stored
record (:class:`Slot`) of the detector's declared type, which it creates and updates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from tokenradar.detectors.baseline import EWStats
from tokenradar.detectors.records import Record, convert
from tokenradar.schemas import TokenUsageEvent
from tokenradar.schemas.config import DetectorSection
from tokenradar.schemas.kinds import KindDeclaration


@dataclass(frozen=True, slots=True)
class ClosedBucket:
    """A time bucket (an hour, a rate window) the user was active in, now over."""

    start: float
    tokens: int
    requests: int
    active_hours: int = 1
    """For a day: the hours in it with at least one request..."""
    hours_mask: int = 0
    """...and which UTC hours those were (bit h for hour h)."""


def unseen_share(days: int) -> float:
    """How often something not seen in ``days`` days may still happen: about 1 in
    days+1 (Laplace). A young history cannot make anything look rarer than that."""
    return 1.0 / (days + 1)


@dataclass(slots=True)
class Observation:
    """One event and the user's running context, computed once for all detectors, which
    only read it. Not frozen: made for every event, and a frozen dataclass's fields cost
    four times as much to set (``dataclasses.replace`` makes a changed one)."""

    event: TokenUsageEvent
    time: float
    tokens: int
    gap: float | None
    """Seconds since the user's previous request; None for their first."""
    hour_tokens: int
    """Tokens of the user's last hour (50 to 60 minutes: whole 10-minute slices)."""
    hour_requests: int
    window_requests: int
    closed_hour: ClosedBucket | None
    closed_window: ClosedBucket | None
    closed_day: ClosedBucket | None
    repeat_share: float
    """Share of the user's recent prompts that repeat an earlier one."""
    repeated: bool
    """This prompt repeats one of the user's recent ones."""
    session_requests: int
    session_first_input: int
    """Input tokens of the session's first request: what the user asked before the
    conversation's own context piled up."""
    session_most_input: int
    """The most input tokens of the session's earlier requests (this one's, for its first)."""
    usual_hourly_requests: EWStats
    """The user's requests per active hour."""
    usual_activity: float
    """How often the user is active at this hour and weekday, 0..1 (see profile_days)."""
    profile_days: int
    """The user's active days; young profiles are not to be trusted."""
    usual_activity_nearby: float
    """``usual_activity`` of the busiest hour within one of now: the edges of a working
    day that a young profile has not seen yet are not the middle of the night."""
    usual_day_tokens: float | None = None
    """The user's usual tokens per active day, before the day just closed; None while
    young or when no day closed."""
    day_tokens: int = 0
    """The user's running day so far, this request included: its tokens..."""
    day_active_hours: int = 0
    """...and its hours with at least one request."""
    team_shift: float = 0.0
    """How far (log10) the user's whole team has moved up lately; 0 without a team."""
    team_shifting: bool = False
    """The user's team is in a population shift (``TeamState.shifting``)..."""
    team_rise: float = 0.0
    """...and how far (log10) its typical member is up while it rises toward a shift not
    reported yet (``TeamState.rising_by``); 0 otherwise."""
    team_levels_rise: Sequence[float] = ()
    """How far (log10) the team's median member is up over their own reference in each of
    creep's levels (``TeamState.members_rise``); empty while too few are known."""
    team_per_request: EWStats | None = None
    """The team's pooled baseline of log10 tokens per request, for a cold start."""
    team_per_hour: EWStats | None = None
    accepted: frozenset[str] = frozenset()
    """Kinds a person's verdict called normal for this user now: their detectors learn
    this event whole, holding nothing out of their baselines (``detectors.verdicts``)."""
    activity_days: int = 0
    """Days of knowledge behind ``usual_activity``: the user's active days, and for a
    young profile, its team's hours as more (``UsageContext.activity_days``)."""
    round_the_clock: bool = False
    """The identity runs around the clock, as machines do (``UsageContext.round_the_clock``):
    its loops and its nights are its own pattern."""
    team_tools: dict[int, list[int]] | None = None
    """The models and clients the user's team uses (``TeamState.tools``, read only)..."""
    team_tool_days: int = 0
    """...and its members' active days behind that knowledge (``TeamState.tool_days``)."""
    usual_activity_ahead: Callable[[], float] = float
    """Works out ``usual_activity`` of the busiest of the next EARLY_START_HOURS hours (an
    hour just before a person's working day is an early start:
    ``observation.EARLY_START_HOURS``), only when called: few events need it."""

    def off_hours(self, probability: float, min_profile_days: int, *,
                  young_never_seen: bool = False) -> bool:
        """Is the user seldom active now, nor within an hour of now: on fewer than
        ``probability`` of days, or never yet (weakly: an hour unseen in N days is still
        about 1 in N+1, which scores the lower)? A profile younger than
        ``min_profile_days`` is judged by its team's hours, when the team has them (an
        hour the team is seldom active in; with ``young_never_seen``, also one its own
        few days never saw), else not at all."""
        usual = self.usual_activity_nearby
        if self.profile_days >= min_profile_days:
            return usual < probability or self._never_seen(usual)
        team_hours = self.activity_days > self.profile_days
        return team_hours and (usual < probability
                               or (young_never_seen and self._never_seen(usual)))

    def hour_phrase(self, *, nearby: bool = False) -> str:
        """How often the user is active at this hour, in words for an explanation."""
        usual = self.usual_activity_nearby if nearby else self.usual_activity
        if self._never_seen(usual):
            return f"at an hour not seen in this user's {self.profile_days} active days"
        return f"at an hour this user is active on {usual:.0%} of days"

    def _never_seen(self, usual: float) -> bool:
        """``usual`` is the floor the context gives an hour unseen in its active days."""
        return usual <= unseen_share(self.profile_days)

    def grew_with_session(self, step: float) -> bool:
        """Is this request large only because its conversation's context piled up: input
        at most ``step`` times the most of the session's earlier requests, and more input
        than output? A document pasted into a conversation jumps, it does not grow."""
        event = self.event
        return (self.session_requests > 1
                and event.input_tokens <= step * self.session_most_input
                and event.output_tokens < event.input_tokens)

    @property
    def from_cache(self) -> bool:
        """Was most of the request's input read from the prompt cache: a context sent
        before? Input tokens count the cache reads (the contract), so a request without
        input re-sent nothing, and is not."""
        event = self.event
        return 2 * event.cache_read_tokens >= max(event.input_tokens, 1)

    @property
    def fresh_input(self) -> int:
        """The request's input tokens not read from the prompt cache: what was typed,
        pasted or sent this time, not a context sent before."""
        event = self.event
        return max(event.input_tokens - event.cache_read_tokens, 0)

    @property
    def session_growth(self) -> float:
        """Input tokens now over the session's first request's."""
        return (self.event.input_tokens + 1) / (self.session_first_input + 1)


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's verdict on one observation; it becomes an alert above the threshold."""

    score: float
    feature: str
    observed: float
    expected: float
    explanation: str
    single_event: bool = False
    """True when the triggering event alone is the evidence (not the recent ones)."""


class Slot(Record):
    """A detector's per-user numbers: a stored record (:mod:`tokenradar.detectors.records`),
    whose defaults are a user the detector has never seen."""


class Declared:
    """What every detector has: its declaration (:mod:`tokenradar.schemas.kinds`), which
    gives its name and kind, and its configuration section."""

    declaration: ClassVar[KindDeclaration[Any]]
    name: ClassVar[str]
    """The detector's name, as alerts carry it: its kind's..."""
    kind: ClassVar[str]
    """...read for every detector on every event, so set once, from the declaration."""
    config: DetectorSection

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declaration = cls.__dict__.get("declaration")
        if declaration is not None:
            cls.name = cls.kind = declaration.name

    def __init__(self, config: DetectorSection) -> None:
        self.config = config


class Detector(Declared, ABC):
    """A detector of one user's usage: the verbs the engine calls. Its per-user numbers
    are a slot of the user's state, of its ``slot_type``, which it updates."""

    slot_type: ClassVar[type[Slot]]
    """The record of a user's numbers."""

    def new_slot(self) -> Slot:
        """The numbers of a user this detector has never seen."""
        return self.slot_type()

    def restore(self, stored: Any) -> Slot:
        """The slot from its stored fields, decoded as plain values."""
        return convert(stored, self.slot_type)

    @abstractmethod
    def observe(self, slot: Any, observation: Observation) -> Finding | None:
        """Score the observation against the slot, then learn from it."""

    def forming(self, slot: Any, observation: Observation) -> bool:
        """Is evidence of this behaviour building up, not yet enough to alert? Alerts of
        the less specific kinds it would explain wait for it meanwhile."""
        return False


class TeamDetector(Declared, ABC):
    """A detector of a team's movement (a declaration of ``scope="team"``): it reads each
    member's observation with the team's state, where its numbers live, and its alerts
    are the team's (``team:<team>``)."""

    @abstractmethod
    def observe_member(self, team: Any, observation: Observation, local_day: int,
                       local_hour: int) -> Finding | None:
        """Learn one member's observation into ``team`` (a TeamState); a finding when
        the team as a whole is anomalous. ``local_day``/``local_hour``: the member's."""
