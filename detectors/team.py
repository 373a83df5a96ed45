"""The team: a peer group's baselines, and population shifts reported once per team.

Each member's closed day is compared with that member's own long-run daily level;
the team keeps a fading mean of those log-ratios (``shift``) and of how many are
clearly up (``share_up``). When most of a team moves up together, that is one
``population_shift`` alert for ``team:<team>``, and the members' own detectors
expect the team's movement instead of alerting on each of them. The pooled
per-request and per-hour baselines of members give new joiners a cold start.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from detectors.base import Finding
from detectors.baseline import EWStats
from detectors.state import Incident
from schemas.config import PopulationShiftConfig

MEMBER_DAY_FADING = 0.1
"""The team's view remembers roughly its last 10-20 member-days."""
POOL_FADING = 0.01
MAX_MEMBERS = 512
CLIP = 1.0
"""One member's day moves the team's shift by at most 10x (log10 1.0)."""
CODEC_VERSION = 1


def team_key(team: str) -> str:
    """The user id and message key of a team's own alerts, as the contract says."""
    return f"team:{team}"


@dataclass(slots=True)
class TeamState:
    team: str
    shift: EWStats = field(default_factory=lambda: EWStats(MEMBER_DAY_FADING))
    share_up: EWStats = field(default_factory=lambda: EWStats(MEMBER_DAY_FADING))
    per_request: EWStats = field(default_factory=lambda: EWStats(POOL_FADING))
    per_hour: EWStats = field(default_factory=lambda: EWStats(POOL_FADING))
    members: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_MEMBERS))
    incident: Incident | None = None

    def see_member(self, user_id: str) -> None:
        if user_id not in self.members:
            self.members.append(user_id)

    def learn_member_day(self, log_ratio: float, min_ratio: float) -> None:
        clipped = max(-CLIP, min(CLIP, log_ratio))
        self.shift.update(clipped)
        self.share_up.update(1.0 if log_ratio >= math.log10(min_ratio) else 0.0)

    def expected_shift(self, config: PopulationShiftConfig) -> float:
        """The team's current upward movement (log10) members should be judged against."""
        if (len(self.members) < config.min_members or self.shift.count < config.min_members
                or self.share_up.mean < config.min_share_up / 2):
            return 0.0
        return max(0.0, self.shift.mean)

    def population_finding(self, config: PopulationShiftConfig) -> Finding | None:
        """A finding when most of the team is up together, else None."""
        shift = self.expected_shift(config)
        if shift < math.log10(config.min_ratio) or self.share_up.mean < config.min_share_up:
            return None
        ratio = 10.0 ** shift
        # The chance that this many independent members are up together, were they not.
        surprise = self.share_up.mean * min(len(self.members), self.shift.count)
        return Finding(
            score=min(1.0, surprise / 10.0), feature="team_tokens_vs_member_baselines",
            observed=ratio, expected=1.0,
            explanation=(
                f"Team {self.team} as a whole uses {ratio:.1f}x its members' own usual "
                f"levels, with {self.share_up.mean:.0%} of recent member-days up: a "
                "population change (e.g. an adoption push), reported once for the team."
            ),
        )

    def to_bytes(self) -> bytes:
        document: dict[str, Any] = {
            "v": CODEC_VERSION, "team": self.team,
            "stats": [s.to_list() for s in (self.shift, self.share_up, self.per_request,
                                             self.per_hour)],
            "members": list(self.members),
            "incident": None if self.incident is None else self.incident.to_list(),
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> TeamState:
        document = json.loads(raw)
        if document.get("v") != CODEC_VERSION:
            raise ValueError(f"team state codec version {document.get('v')!r} is not "
                             f"{CODEC_VERSION}: this worker is older than the state it reads")
        shift, share_up, per_request, per_hour = document["stats"]
        return cls(
            team=document["team"],
            shift=EWStats.from_list(MEMBER_DAY_FADING, shift),
            share_up=EWStats.from_list(MEMBER_DAY_FADING, share_up),
            per_request=EWStats.from_list(POOL_FADING, per_request),
            per_hour=EWStats.from_list(POOL_FADING, per_hour),
            members=deque(document["members"], maxlen=MAX_MEMBERS),
            incident=None if document["incident"] is None else Incident(*document["incident"]),
        )
