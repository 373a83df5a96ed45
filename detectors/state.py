"""A user's state: everything tokenradar remembers about one user, in a kilobyte or two.

Stored as the value of the Faust table as a versioned record (never pickle; see
:mod:`tokenradar.detectors.records`): the event ids seen over the last days to drop
duplicates, the usage context (running buckets, usual hours, recent fingerprints,
sessions), each detector's slot, and the open incidents that keep one incident one alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

import msgspec
from msgspec import field

from tokenradar.detectors import records
from tokenradar.detectors.budget import BudgetState
from tokenradar.detectors.context import UsageContext
from tokenradar.detectors.records import Record
from tokenradar.detectors.spend import SpendRates
from tokenradar.schemas.settings import LIVE_STATES

CODEC_VERSION = 9
"""9: a :class:`UserState` record (:mod:`tokenradar.detectors.records`), the usual hours
and weekdays in ten-thousandths, the recent prompts' digests as bytes, event ids' 4-byte
fingerprints, past days' as sets (:class:`SealedDay`), the gaming slot with its
conversations' levels, the spike slot with its hours' fresh tokens; 8 (still read): the
same without the spike's fresh tokens (fields added last: learned afresh, and its request
and hour sizes, learned in whole tokens, move to fresh tokens as they fade); 7 (still
read): the same without the gaming levels either; 6 (still read): the same with every
day's fingerprints in the order seen; 5 (still read): the same with 2-byte fingerprints;
4 (still read): the same with six fields of the gaming slot no longer read; 3 (still
read): the same with those hours and digests as floats and integers; 2 and 1 (still
read): release ae4055c's JSON (:mod:`tokenradar.detectors.legacy`)."""
DIGEST_BYTES = 6
FINGERPRINT_BYTES = 4
NARROW_FINGERPRINT_BYTES = 2
"""The fingerprints versions before 6 stored: read until they age out of the horizon."""
DAY_SECONDS = 86_400
EVIDENCE_IDS = 10
"""How many of the user's latest event ids are kept to name in an alert."""


def _id_fingerprint(event_id: str) -> bytes:
    # The first bytes of a 6-byte digest: codec 1 kept those digests whole, versions 2 to
    # 5 their first two bytes.
    digest = hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()
    return digest[:FINGERPRINT_BYTES]


class SealedDay(Record):
    """A past day's fingerprints as a set: sorted, each stored as its gap to the one
    before in a Rice code (about 28 bits a fingerprint at 60 a day, 25 at 384, against
    32), decoded only to look up a late event of that day.

    >>> day = SealedDay.of([7, 3, 0xFFFF_FFFF])
    >>> day.fingerprints(), day.holds(3), day.holds(4)
    ([3, 7, 4294967295], True, False)
    >>> day.forgotten = 1  # trimmed for capacity: the smallest goes first
    >>> day.holds(3), day.remembered
    (False, 2)
    """

    count: int = 0
    code: bytes = b""
    forgotten: int = 0
    """The smallest ``forgotten`` fingerprints were trimmed for capacity: no longer held
    (dropped from ``code`` at its next sealing)."""

    @classmethod
    def of(cls, fingerprints: list[int]) -> SealedDay:
        ordered = sorted(fingerprints)
        width = _rice_width(len(ordered))
        top = 1 << width  # bin(top | low bits)[3:]: the low bits, ``width`` of them
        bits = "".join(["1" * (gap >> width) + "0" + bin(top | gap & (top - 1))[3:]
                        for gap in map(int.__sub__, ordered, [0, *ordered[:-1]])])
        size = (len(bits) + 7) // 8
        code = (int(bits, 2) << (size * 8 - len(bits))).to_bytes(size, "big") if bits else b""
        return cls(len(ordered), code)

    @property
    def remembered(self) -> int:
        return self.count - self.forgotten

    def fingerprints(self) -> list[int]:
        """The fingerprints still held, smallest first."""
        bits = format(int.from_bytes(self.code, "big"), f"0{len(self.code) * 8}b")
        width = _rice_width(self.count)
        found, value, at = [], 0, 0
        for _ in range(self.count):
            stop = bits.index("0", at)
            value += (stop - at) << width | int(bits[stop + 1 : stop + 1 + width], 2)
            found.append(value)
            at = stop + 1 + width
        return found[self.forgotten :]

    def holds(self, fingerprint: int) -> bool:
        return fingerprint in self.fingerprints()


def _rice_width(count: int) -> int:
    """Bits of each gap stored as they are (the rest in unary): about log2 of the mean gap
    of ``count`` fingerprints spread over 32 bits."""
    return max(1, ((1 << 32) // max(1, count)).bit_length() - 1)


class SeenIds(Record):
    """The event ids a user's scored events had, by UTC day of their event time.

    A redelivered event carries its first copy's timestamp, and events are scored in
    event-time order (see :mod:`tokenradar.detectors.reorder`), so an event after the newest one
    seen cannot be a copy of a scored one: only events at or before the newest are
    looked up, in the bucket of their own day. That keeps 4-byte fingerprints enough:
    a look-up matches a new id by chance with odds of (ids that day) / 2^32, below one
    in ten million at the default 384 ids, and only for events that arrive late or tie
    the newest. (Versions before 6 kept 2 bytes: a fuzz run of 338 late events in CI
    dropped one real event as a duplicate; their ``narrow`` days are still read.)

    The newest day's fingerprints are kept in the order seen; once the newest event is of
    a later day, a day's are sealed (:class:`SealedDay`): the same fingerprints, so the
    same odds, as a set in a fifth fewer bytes. A late event's id joins its day's open
    fingerprints until the next sealing.

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
    >>> list(seen.days), list(seen.sealed)
    ([3], [0])
    """

    newest: float = -1.0
    """Event time of the newest id seen (-1: none yet)."""
    days: dict[int, bytearray] = {}
    """UTC day number -> that day's fingerprints not sealed yet, in the order seen."""
    narrow: dict[int, bytearray] = {}
    """The same, as a state stored before version 6 kept them (2 bytes each): looked up
    by their first bytes, never added to, gone once past the horizon."""
    sealed: dict[int, SealedDay] = {}
    """UTC day number -> that day's fingerprints sealed as a set (days before the
    newest's)."""

    def seen_before(self, event_id: str, time: float, horizon_days: int, capacity: int) -> bool:
        """True if ``event_id`` was seen on its event day; else remember it."""
        fingerprint = _id_fingerprint(event_id)
        day = int(time // DAY_SECONDS)
        if time <= self.newest and self._holds(day, fingerprint):
            return True
        self.newest = max(self.newest, time)
        newest_day = int(self.newest // DAY_SECONDS)
        oldest_kept = newest_day - horizon_days
        if day >= oldest_kept:
            self.days.setdefault(day, bytearray()).extend(fingerprint)
        for buckets in (self.days, self.narrow, self.sealed):
            for old in [d for d in buckets if d < oldest_kept]:
                del buckets[old]
        if min(self.days, default=newest_day) < newest_day:
            self._seal(newest_day)
        self._trim(capacity)
        return False

    def _holds(self, day: int, fingerprint: bytes) -> bool:
        sealed = self.sealed.get(day)
        return (any(_bucket_holds(buckets.get(day), fingerprint[:width])
                    for buckets, width in self._widths())
                or sealed is not None and sealed.holds(int.from_bytes(fingerprint, "big")))

    def _widths(self) -> tuple[tuple[dict[int, bytearray], int], ...]:
        return (self.narrow, NARROW_FINGERPRINT_BYTES), (self.days, FINGERPRINT_BYTES)

    def _seal(self, newest_day: int) -> None:
        """Seal the open fingerprints of every day before ``newest_day``, with what that
        day has sealed already."""
        for day in [d for d in self.days if d < newest_day]:
            bucket = self.days.pop(day)
            sealed = self.sealed.get(day)
            kept = [] if sealed is None else sealed.fingerprints()
            kept += (int.from_bytes(bucket[i : i + FINGERPRINT_BYTES], "big")
                     for i in range(0, len(bucket), FINGERPRINT_BYTES))
            self.sealed[day] = SealedDay.of(kept)

    def _trim(self, capacity: int) -> None:
        """Forget the oldest days' ids first (the narrow ones before any day's wide
        ones; of a day, the sealed before the open, the smallest sealed first), down to
        ``capacity`` ids."""
        excess = (sum(map(len, self.days.values())) // FINGERPRINT_BYTES
                  + sum(map(len, self.narrow.values())) // NARROW_FINGERPRINT_BYTES
                  + sum([day.count - day.forgotten for day in self.sealed.values()]) - capacity)
        if excess <= 0:  # the usual case: nothing to sort
            return
        for day in sorted(self.narrow):
            excess = _cut(self.narrow, day, NARROW_FINGERPRINT_BYTES, excess)
        for day in sorted(self.days.keys() | self.sealed.keys()):
            if excess <= 0:
                return
            sealed = self.sealed.get(day)
            if sealed is not None:
                cut = min(excess, sealed.remembered)
                sealed.forgotten += cut
                excess -= cut
                if not sealed.remembered:
                    del self.sealed[day]
            if day in self.days:
                excess = _cut(self.days, day, FINGERPRINT_BYTES, excess)


def _cut(buckets: dict[int, bytearray], day: int, width: int, excess: int) -> int:
    """Forget up to ``excess`` of the oldest fingerprints of ``day``; the excess left."""
    if excess <= 0:
        return excess
    bucket = buckets[day]
    cut = min(excess, len(bucket) // width)
    del bucket[: cut * width]
    if not bucket:
        del buckets[day]
    return excess - cut


def _bucket_holds(bucket: bytearray | None, fingerprint: bytes) -> bool:
    if bucket is None:
        return False
    width = len(fingerprint)
    return any(bucket[i : i + width] == fingerprint for i in range(0, len(bucket), width))


class Incident(Record):
    """An alert already sent for this user and kind; quiet until ``until``."""

    alert_id: str
    until: float
    severity: int = 0
    """Rank of the severity last published, so a worsening incident is re-published."""


class UserState(Record):
    user_id: str
    team: str | None = None
    events: int = 0
    context: UsageContext = field(default_factory=UsageContext)
    recent_ids: list[str] = []
    """The user's last EVIDENCE_IDS event ids, oldest first, to name in an alert."""
    seen: SeenIds = field(default_factory=SeenIds)
    slots: dict[str, Any] = {}
    """Detector name -> its :class:`~tokenradar.detectors.base.Slot`; as decoded (plain
    values) until the detector first asks for it (see ScoringEngine)."""
    incidents: dict[str, Incident] = {}
    day_maxima: dict[str, float] = {}
    """Each detector's highest score of the user's running day, for the team's
    calibration (see :mod:`tokenradar.detectors.renormalisation`)."""
    alert_times: list[tuple[float, str]] = []
    """When, and of which kind, the user's new alerts of the noisy-identity window were."""
    spend: SpendRates = field(default_factory=SpendRates)
    """The user's dollars per token and per request, to put alerts in money."""
    budget: BudgetState | None = None
    """The user's own monthly budget's spend, when the configuration gives them one."""

    def remember_event(self, event_id: str) -> None:
        """Count an event to be scored, and keep its id among the latest."""
        self.events += 1
        self.recent_ids.append(event_id)
        if len(self.recent_ids) > EVIDENCE_IDS:
            del self.recent_ids[0]

    def to_bytes(self) -> bytes:
        return records.encode(CODEC_VERSION, self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> UserState:
        stored = records.stored_version(raw)
        if raw[:1] == b"{" or stored in (3, 4, 5):  # an older release's
            from tokenradar.detectors import legacy  # it builds this module's records

            return legacy.user_state(raw)
        # Version 6 is today's layout but for the sealed days (a field added last): its
        # days stay open until the user's next event seals them. Version 7 is today's but
        # for the gaming slot's conversation levels, and 8 for the spike slot's fresh
        # tokens of hours (fields added last: learned afresh).
        version = stored if stored in (6, 7, 8) else CODEC_VERSION
        state = records.decode(raw, version, _DECODER, "user state")
        if version in (6, 7):
            from tokenradar.detectors import legacy

            legacy.with_gaming_levels(state)
        return state

    @classmethod
    def from_fields(cls, values: list[Any]) -> UserState:
        """The state from its fields as plain values, exactly as if stored and read."""
        return _DECODER.decode(records.record_bytes(values))


_DECODER = records.decoder(UserState)


class _ContextHead(Record):
    last_time: float = -1.0


class _StateHead(Record):
    """The first fields of a stored :class:`UserState`: msgspec skips the rest unread."""

    user_id: str
    team: str | None = None
    events: int = 0
    context: _ContextHead = field(default_factory=_ContextHead)


_HEAD_DECODER = msgspec.msgpack.Decoder(_StateHead)


def stored_last_time(raw: bytes) -> float:
    """A stored state's ``context.last_time``, without decoding the rest of it."""
    if raw[:1] == b"{":
        return UserState.from_bytes(raw).context.last_time
    # These first fields are the same in versions 3 to 9.
    stored = records.stored_version(raw)
    version = stored if stored in (3, 4, 5, 6, 7, 8) else CODEC_VERSION
    return records.decode(raw, version, _HEAD_DECODER, "user state").context.last_time


KeyT = TypeVar("KeyT", bound=Hashable)


class HeldStates(Generic[KeyT]):
    """Users' states in memory, by key: the ``live`` most recently used decoded, every
    other one as its stored bytes, decoded again when it is next asked for.

    A user's decoded state weighs about six times its bytes, and most users are idle at
    any time: holding them as bytes is what lets a million users fit in a few GB. The
    codec is exact, so a state read back is the state that was put away.

    >>> held = HeldStates[str](live=1)
    >>> held["ana"], held["bob"] = UserState(user_id="ana"), UserState(user_id="bob")
    >>> held.get("ana").events += 1  # ana was put away as bytes, and comes back
    >>> held.get("ana").events, len(held), held.get("eve")
    (1, 2, None)
    """

    def __init__(self, live: int = LIVE_STATES) -> None:
        self.live = live
        self._decoded: dict[KeyT, UserState] = {}
        """Most recently used last."""
        self._stored: dict[KeyT, bytes] = {}

    def __len__(self) -> int:
        return len(self._decoded) + len(self._stored)

    def get(self, key: KeyT) -> UserState | None:
        """The user's state (decoded, and now the most recently used), or None."""
        state = self._decoded.pop(key, None)
        if state is None:
            raw = self._stored.pop(key, None)
            if raw is None:
                return None
            state = UserState.from_bytes(raw)
        self._decoded[key] = state
        self._put_away()
        return state

    def __setitem__(self, key: KeyT, state: UserState) -> None:
        self._stored.pop(key, None)
        self._decoded.pop(key, None)
        self._decoded[key] = state
        self._put_away()

    def __delitem__(self, key: KeyT) -> None:
        if self._decoded.pop(key, None) is None:
            del self._stored[key]

    def keys_where(self, last_time: Callable[[float], bool]) -> list[KeyT]:
        """The keys of the states whose ``context.last_time`` passes the test."""
        return [key for key, time in self._last_times() if last_time(time)]

    def _last_times(self) -> Iterator[tuple[KeyT, float]]:
        for key, state in self._decoded.items():
            yield key, state.context.last_time
        for key, raw in self._stored.items():
            yield key, stored_last_time(raw)

    def _put_away(self) -> None:
        """Store the least recently used states as bytes, down to ``live`` decoded."""
        while len(self._decoded) > self.live:
            key = next(iter(self._decoded))
            self._stored[key] = self._decoded.pop(key).to_bytes()
