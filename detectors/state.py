"""A user's state: everything tokenradar remembers about one user, in a kilobyte or two.

Stored as the value of the Faust table in a versioned JSON codec (never pickle):
the event ids seen over the last days to drop duplicates, the usage context (running
buckets, usual hours, recent fingerprints, session), each detector's few numbers, and
the open incidents that keep one incident one alert.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tokenradar.detectors.context import UsageContext

CODEC_VERSION = 2
"""2: event ids seen kept per day (:class:`SeenIds`); 1 (still read): the last 64 ids."""
LEGACY_DIGEST_BYTES = 6
"""Codec 1 kept 6-byte digests; their first bytes are today's fingerprints."""
FINGERPRINT_BYTES = 2
DAY_SECONDS = 86_400
EVIDENCE_IDS = 10
"""How many of the user's latest event ids are kept to name in an alert."""


def _id_fingerprint(event_id: str) -> bytes:
    digest = hashlib.blake2b(event_id.encode(), digest_size=LEGACY_DIGEST_BYTES).digest()
    return digest[:FINGERPRINT_BYTES]


@dataclass(slots=True)
class SeenIds:
    """The event ids a user's scored events had, by UTC day of their event time.

    A redelivered event carries its first copy's timestamp, and events are scored in
    event-time order (see :mod:`tokenradar.detectors.reorder`), so an event after the newest one
    seen cannot be a copy of a scored one: only events at or before the newest are
    looked up, in the bucket of their own day. That keeps 2-byte fingerprints enough:
    a look-up matches a new id by chance with odds of (ids that day) / 65,536, and
    only for the few events that arrive late or tie the newest.

    Examples
    --------
    >>> seen = SeenIds()
    >>> seen.seen_before("e1", 1_000.0, horizon_days=7, capacity=100)
    False
    >>> seen.seen_before("e1", 1_000.0, horizon_days=7, capacity=100)
    True
    >>> seen.seen_before("e2", 3 * 86_400.0, horizon_days=7, capacity=100)
    False
    >>> seen.seen_before("e1", 1_000.0, horizon_days=7, capacity=100)  # two days later
    True
    """

    newest: float = -1.0
    """Event time of the newest id seen (-1: none yet)."""
    days: dict[int, bytearray] = field(default_factory=dict)
    """UTC day number -> that day's fingerprints, in the order seen."""

    def seen_before(self, event_id: str, time: float, horizon_days: int, capacity: int) -> bool:
        """True if ``event_id`` was seen on its event day; else remember it."""
        fingerprint = _id_fingerprint(event_id)
        day = int(time // DAY_SECONDS)
        bucket = self.days.get(day)
        if time <= self.newest and bucket is not None and _holds(bucket, fingerprint):
            return True
        self.newest = max(self.newest, time)
        oldest_kept = int(self.newest // DAY_SECONDS) - horizon_days
        if day >= oldest_kept:
            self.days.setdefault(day, bytearray()).extend(fingerprint)
        for old in [d for d in self.days if d < oldest_kept]:
            del self.days[old]
        self._trim(capacity)
        return False

    def _trim(self, capacity: int) -> None:
        """Forget the oldest days' ids first, down to ``capacity`` ids."""
        excess = sum(len(bucket) for bucket in self.days.values()) // FINGERPRINT_BYTES
        excess -= capacity
        for day in sorted(self.days):
            if excess <= 0:
                break
            bucket = self.days[day]
            cut = min(excess, len(bucket) // FINGERPRINT_BYTES)
            del bucket[: cut * FINGERPRINT_BYTES]
            excess -= cut
            if not bucket:
                del self.days[day]

    def to_list(self) -> list[Any]:
        return [self.newest, *(item for day in sorted(self.days)
                               for item in (day, base64.b64encode(self.days[day]).decode()))]

    @classmethod
    def from_list(cls, values: list[Any]) -> SeenIds:
        days = {int(values[i]): bytearray(base64.b64decode(values[i + 1]))
                for i in range(1, len(values), 2)}
        return cls(newest=values[0], days=days)

    @classmethod
    def from_legacy(cls, encoded: str, newest: float) -> SeenIds:
        """Codec 1's last ids (6-byte digests, no times): kept as seen on the newest day."""
        digests = base64.b64decode(encoded)
        fingerprints = bytearray().join(
            digests[i : i + FINGERPRINT_BYTES]
            for i in range(0, len(digests), LEGACY_DIGEST_BYTES))
        if newest < 0 or not fingerprints:
            return cls()
        return cls(newest=newest, days={int(newest // DAY_SECONDS): fingerprints})


def _holds(bucket: bytearray, fingerprint: bytes) -> bool:
    return any(bucket[i : i + FINGERPRINT_BYTES] == fingerprint
               for i in range(0, len(bucket), FINGERPRINT_BYTES))


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
    seen: SeenIds = field(default_factory=SeenIds)
    slots: dict[str, Any] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    day_maxima: dict[str, float] = field(default_factory=dict)
    """Each detector's highest score of the user's running day, for the team's
    calibration (see :mod:`tokenradar.detectors.renormalisation`)."""
    alert_times: list[tuple[float, str]] = field(default_factory=list)
    """When, and of which kind, the user's new alerts of the noisy-identity window were."""

    def to_bytes(self) -> bytes:
        document = {
            "v": CODEC_VERSION,
            "user": self.user_id,
            "team": self.team,
            "events": self.events,
            "context": self.context.to_list(),
            "recent": list(self.recent_ids),
            "seen": self.seen.to_list(),
            "slots": {name: _as_list(slot) for name, slot in self.slots.items()},
            "incidents": {kind: inc.to_list() for kind, inc in self.incidents.items()},
        }
        if self.day_maxima:  # a teamless user keeps none
            document["daymax"] = self.day_maxima
        if self.alert_times:
            document["alerted"] = self.alert_times
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> UserState:
        document = json.loads(raw)
        version = document.get("v")
        if version not in (1, CODEC_VERSION):
            raise ValueError(
                f"user state codec version {version!r} is not {CODEC_VERSION}: "
                "this worker is older than the state it reads"
            )
        context = UsageContext.from_list(document["context"])
        seen = (SeenIds.from_list(document["seen"]) if version == CODEC_VERSION
                else SeenIds.from_legacy(document["seen"], context.last_time))
        return cls(
            user_id=document["user"],
            team=document["team"],
            events=document["events"],
            context=context,
            recent_ids=deque(document["recent"], maxlen=EVIDENCE_IDS),
            seen=seen,
            # Slots stay plain lists until a detector asks for them (see ScoringEngine).
            slots=dict(document["slots"]),
            incidents={k: Incident(*v) for k, v in document["incidents"].items()},
            # Both came with renormalisation; a state stored before it has neither.
            day_maxima=document.get("daymax", {}),
            alert_times=[(time, kind) for time, kind in document.get("alerted", [])],
        )


def _as_list(slot: Any) -> list[Any]:
    return slot if isinstance(slot, list) else slot.to_list()
