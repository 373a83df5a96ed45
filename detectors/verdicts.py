"""People's verdicts and the configured calendars: when a kind is silenced, and how it learns.

A ``false`` or ``expected`` verdict on an alert silences that user (or team) and kind
from the verdict's timestamp until its end, in event time; meanwhile the detectors of
that kind learn the user's events as usual ones (``Observation.accepted``): where they
would hold an outlier out of a baseline, or clip it, they take it whole, so the
behaviour the person called normal becomes the baseline rather than a recurring
surprise. A ``true`` verdict is recorded. A calendar window (an offsite, a migration)
silences its kinds, or keeps their baselines as they were (``learn = false``), for its
teams or everyone.

Verdicts live in a :class:`VerdictBook` per routing key, a versioned record
(:mod:`tokenradar.detectors.records`) of the changelog-backed state next to the users'
and team's. A book's content does not depend
on the order verdicts reached it (per alert the latest verdict wins), and a verdict
only acts on events at or after its own timestamp: so the worker, which files a
verdict when it arrives, and ``replay --feedback``, which files them all first, score
alike whenever each verdict arrived before the events it covers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from tokenradar.detectors.records import Record, decode, encode
from tokenradar.schemas import AnomalyEvent
from tokenradar.schemas.calendar import CalendarWindow
from tokenradar.schemas.feedback import SILENCING, FeedbackVerdict
from tokenradar.schemas.kinds import declared_kinds

RECORD_VERSION = 2
"""2: a :class:`VerdictBook` record; 1 (JSON lists, never in a release) is not read."""
MAX_VERDICTS = 512
"""Verdicts a routing key keeps: those whose silences end last (a team of 50 giving a
verdict a day keeps over a year's)..."""
MAX_BOOK_BYTES = 256 * 1024
"""...and at most about this many bytes of them: names of the longest allowed, 512
verdicts would make a changelog record over Kafka's 1 MB request limit, and a record
that cannot be written stops the worker."""
RECORD_OVERHEAD_BYTES = 32
"""A kept verdict's bytes besides its strings (two times, the framing)."""
VERDICT = "verdict"
CALENDAR = "calendar"
"""Why an alert was silenced, as counted in metrics."""


class VerdictRecord(Record):
    """One alert's verdict, as kept in state: times in epoch seconds."""

    alert_id: str
    verdict: str
    user_id: str
    kind: str
    start: float
    until: float
    """End of the silence; ``start`` for a ``true`` verdict, which silences nothing."""

    @classmethod
    def of(cls, verdict: FeedbackVerdict) -> VerdictRecord:
        start = verdict.timestamp.timestamp()
        until = start if verdict.until is None else verdict.until.timestamp()
        return cls(verdict.alert_id, verdict.verdict, verdict.user_id, verdict.kind, start,
                   until)

    def silences(self, user_id: str, time: float) -> bool:
        return (self.verdict in SILENCING and self.user_id == user_id
                and self.start <= time < self.until)

    def rank(self) -> tuple[float, str, float]:
        """Of two verdicts on one alert, the later given wins (ties: by value, then end)."""
        return (self.start, self.verdict, self.until)


class VerdictBook(Record):
    """The verdicts given on a routing key's alerts (its team's members, or one user).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> book = VerdictBook()
    >>> verdict = FeedbackVerdict(alert_id="a1", verdict="false", user_id="ana",
    ...     kind="spike", timestamp=datetime(2026, 11, 2, tzinfo=UTC),
    ...     until=datetime(2026, 11, 16, tzinfo=UTC))
    >>> book.file(verdict), book.file(verdict)  # a redelivery changes nothing
    (True, False)
    >>> day = 86_400.0
    >>> start = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
    >>> sorted(book.silenced("ana", start + day)), sorted(book.silenced("ana", start + 15 * day))
    (['spike'], [])
    >>> VerdictBook.from_bytes(book.to_bytes()) == book
    True
    """

    records: dict[str, VerdictRecord] = {}
    """alert_id -> its verdict."""

    def file(self, verdict: FeedbackVerdict) -> bool:
        """Keep ``verdict`` unless a later one on its alert is kept; True if it changed."""
        record = VerdictRecord.of(verdict)
        kept = self.records.get(record.alert_id)
        if kept is not None and kept.rank() >= record.rank():
            return False
        self.records[record.alert_id] = record
        while len(self.records) > MAX_VERDICTS or self._bytes() > MAX_BOOK_BYTES:
            oldest = min(self.records.values(), key=lambda r: (r.until, r.alert_id))
            del self.records[oldest.alert_id]
        return self.records.get(record.alert_id) is record

    def _bytes(self) -> int:
        """About what the kept verdicts take once encoded (the alert id twice: the key)."""
        return sum(2 * len(r.alert_id.encode()) + len(r.verdict) + len(r.user_id.encode())
                   + len(r.kind.encode()) + RECORD_OVERHEAD_BYTES
                   for r in self.records.values())

    def silenced(self, user_id: str, time: float) -> frozenset[str]:
        """The kinds a verdict silences for ``user_id`` at ``time``."""
        return frozenset(record.kind for record in self.records.values()
                         if record.silences(user_id, time))

    def to_bytes(self) -> bytes:
        return encode(RECORD_VERSION, self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> VerdictBook:
        return decode(raw, RECORD_VERSION, _DECODER, "verdict book")

    def __bool__(self) -> bool:
        return bool(self.records)


@dataclass(frozen=True, slots=True)
class Quiet:
    """What holds for one user's event: the kinds silenced, and why, and those not learned."""

    by_verdict: frozenset[str] = frozenset()
    """Silenced by a person's verdict, and learned as usual meanwhile."""
    by_calendar: frozenset[str] = frozenset()
    frozen: frozenset[str] = frozenset()
    """Kinds whose detectors' baselines stay as they were (a calendar's ``learn = false``)."""

    def reason(self, kind: str) -> str | None:
        """Why ``kind`` is silenced (``verdict`` or ``calendar``), None if it is not."""
        if kind in self.by_verdict:
            return VERDICT
        return CALENDAR if kind in self.by_calendar else None

    def __bool__(self) -> bool:
        return bool(self.by_verdict or self.by_calendar or self.frozen)


NOTHING_QUIET = Quiet()


@dataclass(frozen=True, slots=True)
class _Window:
    start: float
    end: float
    teams: frozenset[str]
    kinds: frozenset[str] | None
    """None: every kind."""
    silence: bool
    learn: bool


class Calendar:
    """The configured windows, in epoch seconds, and the silences in force at a time.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> offsite = CalendarWindow(name="offsite", start=datetime(2026, 11, 16, tzinfo=UTC),
    ...     end=datetime(2026, 11, 18, tzinfo=UTC), teams=["research"], kinds=["spike"])
    >>> calendar = Calendar([offsite])
    >>> during = datetime(2026, 11, 17, tzinfo=UTC).timestamp()
    >>> calendar.quiet_at(None, "ana", "research", during).reason("spike")
    'calendar'
    >>> bool(calendar.quiet_at(None, "bo", "payments", during))
    False
    """

    def __init__(self, windows: Iterable[CalendarWindow]) -> None:
        self._every_kind = frozenset(kind.name for kind in declared_kinds())
        self._windows = [
            _Window(window.start.timestamp(), window.end.timestamp(), frozenset(window.teams),
                    frozenset(window.kinds) or None, window.silence, window.learn)
            for window in windows]

    def quiet_at(self, book: VerdictBook | None, user_id: str, team: str | None,
                 time: float) -> Quiet:
        """What ``book`` and the calendar silence or freeze for ``user_id`` at ``time``."""
        by_verdict = book.silenced(user_id, time) if book else frozenset()
        if not self._windows and not by_verdict:
            return NOTHING_QUIET
        silenced: set[str] = set()
        frozen: set[str] = set()
        for window in self._windows:
            if window.start <= time < window.end and (not window.teams or team in window.teams):
                kinds = self._every_kind if window.kinds is None else window.kinds
                if window.silence:
                    silenced |= kinds
                if not window.learn:
                    frozen |= kinds
        return Quiet(by_verdict, frozenset(silenced), frozenset(frozen))

    def __bool__(self) -> bool:
        return bool(self._windows)


def silence_alerts(alerts: list[AnomalyEvent], calendar: Calendar, book: VerdictBook | None,
                   time: float) -> tuple[list[AnomalyEvent], list[tuple[str, str]]]:
    """Split ``alerts`` into those published and the (kind, reason) of those silenced,
    each judged for its own user id (``team:<team>`` for a team's)."""
    if not alerts or (not calendar and not book):
        return alerts, []
    kept, silenced = [], []
    for alert in alerts:
        reason = calendar.quiet_at(book, alert.user_id, alert.team, time).reason(alert.kind)
        if reason is None:
            kept.append(alert)
        else:
            silenced.append((alert.kind, reason))
    return kept, silenced


_DECODER = msgspec.msgpack.Decoder(VerdictBook)
