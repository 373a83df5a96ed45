"""New pattern: a burst on a model or client this user never used, at an unusual hour.

What a leaked credential looks like from the usage side. A new model or client
alone is normal (people switch models); a burst of them, at an hour the user is
normally not active, is not. Known models and clients are kept as small digests.
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
3 found 18, 2 found 23 for 2 false alerts more)."""
WARM_UP = 0.0
"""First-seen time recorded for what the user used during warm-up: never new."""


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
    a request without a session counts once."""


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
                and observation.off_hours(config.unusual_hour_probability,
                                          config.min_profile_days, nearby=True))

    def observe(self, slot: PatternSlot, observation: Observation) -> Finding | None:
        config = self.config
        event = observation.event
        time = observation.time
        warmed_up = observation.profile_days >= config.min_profile_days and len(slot.known) > 0
        window = config.burst_minutes * 60.0
        new_things = [
            what for what, value in (("model", event.model), ("client", event.client))
            if value is not None and self._is_new(slot, f"{what}:{value}", time, window,
                                                  warmed_up)
        ]
        if not new_things:
            return None
        if time - slot.burst_start > window:
            slot.burst_start, slot.burst_requests, slot.burst_units = time, 0, 0
        slot.burst_requests += 1
        if event.session_id is None or observation.session_requests % SESSION_UNIT == 1:
            slot.burst_units += 1
        usual = observation.usual_activity_nearby
        if (slot.burst_requests < config.min_burst_requests
                or not observation.off_hours(config.unusual_hour_probability,
                                             config.min_profile_days, nearby=True)):
            return None
        # Two rarities together: the novelty (each never-used model or client) and the
        # burst (so many independent requests in the window, against the user's pace at
        # this hour: their requests per active hour times how often they are active now).
        usual_in_window = observation.usual_hourly_requests.mean * window / 3600.0 * usual
        decades = (_novelty_decades(observation.profile_days) * len(new_things)
                   + poisson_tail_decades(slot.burst_units,
                                          max(usual_in_window * REQUEST_OVERDISPERSION, 1.0)))
        what = " and ".join(f"{kind} {getattr(event, kind)}" for kind in new_things)
        minutes = (time - slot.burst_start) / 60.0
        return Finding(
            score=min(1.0, decades / SCORE_DECADES), feature="requests_on_new_model_or_client",
            observed=slot.burst_requests, expected=0.0,
            explanation=(
                f"{slot.burst_requests} requests in {minutes:.0f} min on {what}, never used "
                f"by this user before, {observation.hour_phrase(nearby=True)}: "
                "check that the credential is theirs."
            ),
        )

    @staticmethod
    def _is_new(slot: PatternSlot, name: str, time: float, window: float,
                warmed_up: bool) -> bool:
        """Remember ``name``; True if first seen after warm-up, within the burst window."""
        key = digest32(name)
        seen = slot.known.get(key)
        if seen is None:
            seen = slot.known[key] = Sighting(time if warmed_up else WARM_UP, time)
            if len(slot.known) > MAX_KNOWN:
                oldest = min(slot.known, key=lambda k: slot.known[k].last)
                del slot.known[oldest]
        seen.last = time
        return seen.first != WARM_UP and time - seen.first <= window


def _novelty_decades(profile_days: int) -> float:
    """Surprise of something unused in ``profile_days`` active days, so a newcomer
    still trying things out is not taken for a stolen key."""
    return min(MAX_NOVELTY_DECADES, -math.log10(unseen_share(profile_days)))
