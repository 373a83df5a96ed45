"""A user's state: everything tokenradar remembers about one user, in a kilobyte or two.

Stored as the value of the Faust table in a versioned JSON codec (never pickle):
recent event ids to drop duplicates, the usage context (running buckets, usual
hours, recent fingerprints, session), each detector's few numbers, and the open
incidents that keep one incident one alert.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from detectors.context import UsageContext

CODEC_VERSION = 1
DIGEST_BYTES = 6
"""Per-user dedupe digests: 48 bits, so 128 recent ids collide once in ~10^10 users."""
EVIDENCE_IDS = 10
"""How many of the user's latest event ids are kept to name in an alert."""


def _id_digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


@dataclass(slots=True)
class Incident:
    """An alert already sent for this user and kind; quiet until ``until``."""

    alert_id: str
    until: float
    severity: int = 0
    """Rank of the severity last published, so a worsening incident is re-published."""

    def to_list(self) -> list[Any]:
        return [self.alert_id, self.until, self.severity]


@dataclass(slots=True)
class UserState:
    user_id: str
    team: str | None = None
    events: int = 0
    context: UsageContext = field(default_factory=UsageContext)
    recent_ids: deque[str] = field(default_factory=lambda: deque(maxlen=EVIDENCE_IDS))
    seen_digests: deque[bytes] = field(default_factory=deque)
    slots: dict[str, Any] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    day_maxima: dict[str, float] = field(default_factory=dict)
    """Each detector's highest score of the user's running day, for the team's
    calibration (see :mod:`detectors.renormalisation`)."""
    alert_times: list[tuple[float, str]] = field(default_factory=list)
    """When, and of which kind, the user's new alerts of the noisy-identity window were."""

    def seen_before(self, event_id: str, remember: int) -> bool:
        """True if ``event_id`` is among the last ``remember`` ids; else remember it."""
        digest = _id_digest(event_id)
        if digest in self.seen_digests:
            return True
        self.seen_digests.append(digest)
        while len(self.seen_digests) > remember:
            self.seen_digests.popleft()
        return False

    def to_bytes(self) -> bytes:
        document = {
            "v": CODEC_VERSION,
            "user": self.user_id,
            "team": self.team,
            "events": self.events,
            "context": self.context.to_list(),
            "recent": list(self.recent_ids),
            "seen": base64.b64encode(b"".join(self.seen_digests)).decode(),
            "slots": {name: _as_list(slot) for name, slot in self.slots.items()},
            "incidents": {kind: inc.to_list() for kind, inc in self.incidents.items()},
            "daymax": self.day_maxima,
            "alerted": self.alert_times,
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> UserState:
        document = json.loads(raw)
        if document.get("v") != CODEC_VERSION:
            raise ValueError(
                f"user state codec version {document.get('v')!r} is not {CODEC_VERSION}: "
                "this worker is older than the state it reads"
            )
        seen = base64.b64decode(document["seen"])
        return cls(
            user_id=document["user"],
            team=document["team"],
            events=document["events"],
            context=UsageContext.from_list(document["context"]),
            recent_ids=deque(document["recent"], maxlen=EVIDENCE_IDS),
            seen_digests=deque(
                seen[i : i + DIGEST_BYTES] for i in range(0, len(seen), DIGEST_BYTES)
            ),
            # Slots stay plain lists until a detector asks for them (see ScoringEngine).
            slots=dict(document["slots"]),
            incidents={k: Incident(*v) for k, v in document["incidents"].items()},
            # Both came with renormalisation; a state stored before it has neither.
            day_maxima=document.get("daymax", {}),
            alert_times=[(time, kind) for time, kind in document.get("alerted", [])],
        )


def _as_list(slot: Any) -> list[Any]:
    return slot if isinstance(slot, list) else slot.to_list()
