"""Runaway agent: autonomous traffic that keeps going through the user's nights or weekends.

A person stops; an agent left running on a laptop does not. A *run* is the user's
requests with no pause longer than ``max_gap_minutes``. A run of agent-client
requests that goes on at hours this user is normally not active, for long enough,
is an alert.

The evidence is the run's *time* in those hours, not its request count: a fast agent
sends ten times the requests of a slow one in the same half hour, and neither is more
of a runaway for it. Each MINUTES_PER_DRAW minutes of the run at an hour the user is
active on a share p of days counts as one draw of their habits: -log10(p) decades. A
young profile's hours are shrunk toward its team's (``UsageContext.usual_activity``),
so what its few days have not seen is not taken for never. A run that is still one
conversation is a person working late on one thing until it outlasts one
(ONE_CONVERSATION_FACTOR); an agent left running starts conversation after conversation.
An identity that runs around
the clock (``Observation.round_the_clock``) is a machine: it has no off-hours, and its
agents are never left running by someone who went home.
"""

from __future__ import annotations

import fnmatch
import math

from tokenradar.detectors.base import Detector, Finding, Observation, Slot, unseen_share
from tokenradar.detectors.calibration import SCORE_DECADES
from tokenradar.schemas.config import RunawayAgentConfig
from tokenradar.schemas.kinds import RUNAWAY_AGENT

MINUTES_PER_DRAW = 5.0
"""Minutes of an agent run in off-hours that count as one independent draw of the user's
hours: a person who works late works in stretches of about this long, an agent keeps
going."""
KNOWN_PROFILE_DAYS = 10
"""Days of knowledge of the user's hours (their own, and their team's while young) after
which they are known: before, each draw counts for days/KNOWN_PROFILE_DAYS of its surprise,
since a profile of three days alone has not yet seen most of the hours a person works
(new joiners' first agents ran into "an hour not seen" on organisations we did not
simulate)."""
ONE_CONVERSATION_FACTOR = 2.5
"""A run into off-hours that is still one conversation is judged only once it has gone on
this many times ``min_minutes``: one conversation growing late in the evening is a person
working late on one thing (long-context sessions of 25-45 minutes, scoring just past the
bar, were the false runaways), and it ends. An agent left running keeps taking up new
tasks, each in a new conversation: once its off-hours requests are not all of one, it is
judged at once. All but the first: a conversation without session ids is inferred, and
one whose second turn jumps far past its small first (a file read in) is taken for a new
one at that turn."""
HOLD_FACTOR = ONE_CONVERSATION_FACTOR
"""How long an agent run into off-hours may hold back an alert it would explain (a
spike, a rate, a new pattern on its never-used agent client), in ``min_minutes``: as
long as a lone conversation waits to be judged."""


class RunSlot(Slot):
    start: float = 0.0
    off_start: float = 0.0
    off_requests: int = 0
    agent_requests: int = 0
    requests: int = 0
    surprise: float = 0.0
    max_growth: float = 1.0


class RunawayAgentDetector(Detector):
    """Finds agent runs sustained through hours the user is normally not active.

    Parameters
    ----------
    config
        Agent clients, what counts as off-hours and how long; see
        :class:`tokenradar.schemas.config.RunawayAgentConfig`.
    """

    declaration = RUNAWAY_AGENT
    slot_type = RunSlot
    config: RunawayAgentConfig

    def __init__(self, config: RunawayAgentConfig) -> None:
        self.config = config
        self._agent_patterns = tuple(pattern.lower() for pattern in config.agent_clients)

    def _is_agent(self, client: str | None) -> bool:
        """Is ``client`` one of ``agent_clients`` (names or shell patterns, any case)?"""
        if client is None:
            return False
        client = client.lower()
        return any(fnmatch.fnmatchcase(client, pattern) for pattern in self._agent_patterns)

    def _off_hours(self, observation: Observation) -> bool:
        """Is now off-hours for this user (nor within an hour of now)? A young profile is
        judged by its team's hours (:meth:`Observation.off_hours`): its members' first
        agents left running had run for hours unjudged."""
        config = self.config
        return observation.off_hours(config.off_hours_probability, config.min_profile_days)

    def _early_start(self, observation: Observation) -> bool:
        """Is the user's working day due within ``EARLY_START_HOURS``? A run that begins
        then is a person at work early: an agent left running was left by someone who
        went home, so its run began after their day, not shortly before the next one
        (issue 13: agent sessions of 30-50 minutes, 2 hours before a person's first
        usual hour, were false runaways)."""
        config = self.config
        ahead = observation.usual_activity_ahead()
        if observation.profile_days < config.min_profile_days:
            return ahead >= config.off_hours_probability
        return (ahead >= config.off_hours_probability
                and ahead > unseen_share(observation.profile_days))

    def _hour_phrase(self, observation: Observation) -> str:
        if observation.profile_days >= self.config.min_profile_days:
            return observation.hour_phrase(nearby=True)
        return (f"at an hour their team is seldom active in "
                f"(this user's first {observation.profile_days + 1} active days)")

    def forming(self, slot: RunSlot, observation: Observation) -> bool:
        """An agent run into off-hours, younger than HOLD_FACTOR times ``min_minutes``;
        an early start's too, though it is not judged: what it would explain (its new
        agent client at that hour) is the person's early start as much as the run is."""
        hold = HOLD_FACTOR * self.config.min_minutes * 60.0
        if slot.agent_requests < slot.requests / 2:
            return False
        if slot.off_requests > 0:
            return observation.time - slot.off_start < hold
        return (observation.time - slot.start < hold and not observation.round_the_clock
                and self._is_agent(observation.event.client) and self._off_hours(observation))

    def observe(self, slot: RunSlot, observation: Observation) -> Finding | None:
        config = self.config
        gap = observation.gap
        if gap is None or gap > config.max_gap_minutes * 60.0:
            slot.start, slot.off_start = observation.time, 0.0
            slot.off_requests = slot.agent_requests = slot.requests = 0
            slot.surprise, slot.max_growth = 0.0, 1.0
        slot.requests += 1
        if self._is_agent(observation.event.client):
            slot.agent_requests += 1
        elif slot.off_requests:
            # Someone is at the keyboard: a request from their own chat, CLI or IDE is no
            # agent left running. The off-hours evidence starts again from here.
            slot.off_start, slot.off_requests, slot.surprise = 0.0, 0, 0.0
        if observation.session_requests >= 5:
            slot.max_growth = max(slot.max_growth, observation.session_growth)
        # Off-hours means nights, not the edges of a working day: an hour next to one the
        # user works in is an early start or a late finish, with or without an agent.
        usual = observation.usual_activity_nearby
        if (not observation.round_the_clock and self._is_agent(observation.event.client)
                and self._off_hours(observation)
                and (slot.off_requests > 0 or not self._early_start(observation))):
            if slot.off_requests == 0:
                slot.off_start = observation.time
            elif gap is not None:
                minutes = min(gap, config.max_gap_minutes * 60.0) / 60.0
                known = min(1.0, observation.activity_days / KNOWN_PROFILE_DAYS)
                slot.surprise += -math.log10(usual) * known * minutes / MINUTES_PER_DRAW
            slot.off_requests += 1

        off_minutes = (observation.time - slot.off_start) / 60.0 if slot.off_requests else 0.0
        if (slot.off_requests < config.min_requests or off_minutes < config.min_minutes
                or slot.agent_requests < slot.requests / 2):
            return None
        one_conversation = observation.session_requests >= slot.off_requests - 1
        if one_conversation and off_minutes < ONE_CONVERSATION_FACTOR * config.min_minutes:
            return None
        # Context growing within a session is said, not counted: every long agent session
        # grows, a runaway's as much as a person's.
        growth = slot.max_growth >= 2.0
        decades = slot.surprise
        context = (f"; context grew {slot.max_growth:.1f}x within a session" if growth else "")
        return Finding(
            score=min(1.0, decades / SCORE_DECADES), feature="off_hours_agent_requests",
            observed=slot.off_requests, expected=0.0,
            explanation=(
                f"An agent has sent {slot.off_requests} requests over {off_minutes:.0f} min "
                f"{self._hour_phrase(observation)}{context}: "
                "an agent may have been left running."
            ),
        )
