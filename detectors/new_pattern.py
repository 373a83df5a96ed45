"""New pattern: a burst on a model or client this user never used, at an unusual hour.

What a leaked credential looks like from the usage side. A new model or client
alone is normal (people switch models); a burst of them, at an hour the user is
normally not active, is not; nor, at any hour, is a burst far beyond the user's own pace
on both a model and a client they never used.
Known models and clients are kept as small digests.
"""

from __future__ import annotations

import math

from tokenradar.detectors.base import Detector, Finding, Observation, Slot, unseen_share
from tokenradar.detectors.calibration import (
    REQUEST_OVERDISPERSION,
    SCORE_DECADES,
    poisson_tail_decades,
)
from tokenradar.detectors.context import digest32
from tokenradar.detectors.records import Record
from tokenradar.detectors.team import tool_key, used_by_others
from tokenradar.schemas.config import NewPatternConfig
from tokenradar.schemas.kinds import NEW_PATTERN

MAX_KNOWN = 24
"""Models and clients remembered per user; the least recently used is forgotten."""
MAX_NOVELTY_DECADES = 1.0
"""A model or client never used before: at most a 1-in-10 event for a given burst."""
SESSION_UNIT = 3
"""Requests of one session that count as one independent request of a burst: a
conversation's turns follow from each other, but a tool that holds one session for a
whole burst must not hide it (backtest, bursts sent in one session: 10 found 0 of 27,
3 found 18, 2 found 23 for 2 false alerts more). Without a session id, the turns of a
conversation that carries its context (CARRIED_GROWTH) count so too."""
CARRIED_GROWTH = 3.0
"""Without a session id, a request continues a conversation (it follows from its earlier
turns) when it is read mostly from the prompt cache (sent before), or when it carries the
conversation's whole context: its input the most of the conversation so far and this many
times its first. A conversation grows by each turn's answer; independent requests of a
burst neither grow so nor hit the cache (full-size orgs 1 and 9: every false new_pattern
on a person's own conversation was one chat, agent or IDE session of 10-55 turns new to
them, without session ids, each turn counted as an independent request)."""
WARM_UP = 0.0
"""First-seen time recorded for what the user used during warm-up: never new (unless
their team never used it, after the user's first active day: a newcomer's first day is
when they pick their tools)."""
MIN_BURST_MINUTES = 10.0
"""A burst's pace is judged over at least this long: a person's requests come in clumps
of a few minutes."""
MAX_TEAM_NOVELTY_DECADES = 2.0
"""A model or client none of the user's teammates used: at most a 1-in-100 event (a new
model, or a tool the team has not taken up yet, does come)."""
MIN_TEAM_MEMBER_DAYS = 20
"""Members' active days before a team's models and clients say what it never uses."""
STRONG_BURST_DECADES = 8.0
"""A burst this surprising by the user's own pace (1 in 10**8), on both a model and a
client they never used, needs no unusual hour: a light user's few days say little of
their hours (a young profile's working span covers most of the day), but a key sending
days of their requests in minutes from another tool to another model is a stranger's at
any hour. A new tool alone, or a new model alone, bursts too (an agent, a model tried):
that needs an unusual hour (backtest: 2 of 12 missed misuses on
the quick matrix's orgs 4, 7 and 11 were such bursts at an hour the profile called usual)."""


class Sighting(Record):
    """When a model or client was first used (WARM_UP: during warm-up), and last."""

    first: float
    last: float


class PatternSlot(Slot):
    known: dict[int, Sighting] = {}
    """Digest of the model's or client's name -> its sighting, least recently used first
    among equals."""
    burst_start: float = 0.0
    burst_requests: int = 0
    burst_units: int = 0
    """Independent requests of the burst: a session's requests (a conversation's turns,
    an agent loop's steps) follow from each other, so they count once per SESSION_UNIT;
    a request without a session counts once, unless it visibly carries its conversation
    (``_continues``)."""


class NewPatternDetector(Detector):
    """Finds bursts of requests on never-used models or clients at unusual hours.

    Parameters
    ----------
    config
        Warm-up, burst size and window, what an unusual hour is; see
        :class:`tokenradar.schemas.config.NewPatternConfig`.
    """

    declaration = NEW_PATTERN
    slot_type = PatternSlot
    config: NewPatternConfig

    def __init__(self, config: NewPatternConfig) -> None:
        self.config = config

    def forming(self, slot: PatternSlot, observation: Observation) -> bool:
        """A burst on something new, at an unusual hour, within its window."""
        config = self.config
        return (slot.burst_requests > 0
                and observation.time - slot.burst_start <= config.burst_minutes * 60.0
                and self._unusual_hour(observation))

    def observe(self, slot: PatternSlot, observation: Observation) -> Finding | None:
        config = self.config
        event = observation.event
        time = observation.time
        window = config.burst_minutes * 60.0
        warmed_up = observation.profile_days >= config.min_profile_days and len(slot.known) > 0
        team = _Team.of(observation)
        new_things = [
            (what, key) for what, value in (("model", event.model), ("client", event.client))
            if value is not None and self._is_new(
                slot, key := tool_key(what, value), time, window,
                warmed_up or (observation.profile_days > 0 and team.never_used(key)))
        ]
        if not new_things:
            return None
        if time - slot.burst_start > window:
            slot.burst_start, slot.burst_requests, slot.burst_units = time, 0, 0
        slot.burst_requests += 1
        if not _continues(observation) or observation.session_requests % SESSION_UNIT == 1:
            slot.burst_units += 1
        if slot.burst_requests < config.min_burst_requests:
            return None
        # Three rarities together, each of the user's days or their team's: the novelty
        # (each model or client never used by this user and, the rarer, by their team), the
        # hour (how seldom they are active now: for a young profile, shrunk toward its
        # team's hours by how little it knows) and, given they are at work, the burst (so
        # many independent requests since it began against their pace when active).
        pace = observation.usual_hourly_requests
        elapsed = max(time - slot.burst_start, MIN_BURST_MINUTES * 60.0)
        burst = 0.0 if pace.count == 0 else poisson_tail_decades(
            slot.burst_units, max(pace.mean * elapsed / 3600.0 * REQUEST_OVERDISPERSION, 1.0))
        stranger = len(new_things) == 2 and burst >= STRONG_BURST_DECADES
        if not stranger and not self._unusual_hour(observation):
            return None
        novelty = sum(_novelty_decades(observation.profile_days) + team.rarity_decades(key)
                      for _, key in new_things)
        decades = novelty - math.log10(observation.usual_activity_nearby) + burst
        what = " and ".join(f"{kind} {getattr(event, kind)}" for kind, _ in new_things)
        unknown = ", nor by their team" if all(
            team.rarity_decades(key) > 0 for _, key in new_things) else ""
        minutes = (time - slot.burst_start) / 60.0
        return Finding(
            score=min(1.0, decades / SCORE_DECADES), feature="requests_on_new_model_or_client",
            observed=slot.burst_requests, expected=0.0,
            explanation=(
                f"{slot.burst_requests} requests in {minutes:.0f} min on {what}, never used "
                f"by this user before{unknown}, {observation.hour_phrase(nearby=True)}: "
                "check that the credential is theirs."
            ),
        )

    def _unusual_hour(self, observation: Observation) -> bool:
        """Is the user seldom active now (nor within an hour)? A young profile is judged by
        its team's hours (:meth:`Observation.off_hours`), and by an hour its own few days
        never saw: measured on the quick matrix, judging it by its team's hours alone
        missed org 4's key used on a one-day profile's Sunday afternoon."""
        config = self.config
        return observation.off_hours(config.unusual_hour_probability, config.min_profile_days,
                                     young_never_seen=True)

    @staticmethod
    def _is_new(slot: PatternSlot, key: int, time: float, window: float,
                judged: bool) -> bool:
        """Remember the model or client ``key``; True if first seen within the burst window
        when it could be ``judged`` new (after warm-up, or unknown to the team)."""
        seen = slot.known.get(key)
        if seen is None:
            seen = slot.known[key] = Sighting(time if judged else WARM_UP, time)
            if len(slot.known) > MAX_KNOWN:
                oldest = min(slot.known, key=lambda k: slot.known[k].last)
                del slot.known[oldest]
        seen.last = time
        return seen.first != WARM_UP and time - seen.first <= window


class _Team:
    """What the user's team says of a model or client: whether another member uses it."""

    def __init__(self, tools: dict[int, list[int]] | None, member: str, member_days: int
                 ) -> None:
        self.tools = tools if member_days >= MIN_TEAM_MEMBER_DAYS else None
        self.member = member
        self.member_days = member_days
        self._digest: int | None = None

    @classmethod
    def of(cls, observation: Observation) -> _Team:
        return cls(observation.team_tools, observation.event.user_id,
                   observation.team_tool_days)

    def never_used(self, key: int) -> bool:
        """No other member has used it, in a team whose usage is known."""
        if self.tools is None:
            return False
        if self._digest is None:
            self._digest = digest32(self.member)
        return not used_by_others(self.tools, self._digest, key)

    def rarity_decades(self, key: int) -> float:
        """Surprise of a model or client none of the team's other members used in its
        ``member_days``: about 1 in member_days + 1, at most MAX_TEAM_NOVELTY_DECADES."""
        if not self.never_used(key):
            return 0.0
        return min(MAX_TEAM_NOVELTY_DECADES, -math.log10(unseen_share(self.member_days)))


def _continues(observation: Observation) -> bool:
    """Does this request follow from the earlier turns of its conversation: one of a
    declared session, or, without a session id, one read mostly from the cache or
    carrying its inferred conversation's whole context (CARRIED_GROWTH)?"""
    event = observation.event
    if event.session_id is not None or observation.from_cache:
        return True
    return (observation.session_requests > 1
            and event.input_tokens >= observation.session_most_input
            and observation.session_growth >= CARRIED_GROWTH)


def _novelty_decades(profile_days: int) -> float:
    """Surprise of something unused in ``profile_days`` active days, so a newcomer
    still trying things out is not taken for a stolen key."""
    return min(MAX_NOVELTY_DECADES, -math.log10(unseen_share(profile_days)))
