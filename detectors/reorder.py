"""Reorder buffer: one routing key's events, released in (event time, event id) order.

Producers on many hosts, unkeyed messages spread over partitions, and the worker's
re-key hop all deliver a routing key's events a little out of order, and in an order
that depends on how fetches interleave. Detectors that read gaps and sequences (loops,
rates, sessions, the team's day) must see one order everywhere, so the worker and
``replay`` both put each routing key's events through this buffer and score them as
it releases them: by event time, then event id, then the event's own bytes (the last
only separates two copies of one id that differ).

An event is held until no earlier one can still arrive: every *origin* (an input
partition in the worker, the file in replay) delivers its events at most ``window``
seconds out of order, so once every origin has sent an event later than ``t +
window``, nothing before ``t`` is still to come. The release order is then the same
whatever the origins' relative pace, only the release times differ. An event earlier
than what was already released is *late*: scored at once, in arrival order, and
counted; never dropped. (An origin is known from its first event on: if the others
ran more than a window ahead before it showed up, its first events are late.)

Bounded: a buffer holds at most ``max_events`` events (``scoring.reorder_max_events``)
and :data:`MAX_HELD_BYTES` of them, so that its record stays well under the producer's
largest request (1 MB by default) whatever a routing key's traffic: a stored record
too large for the changelog crashes the worker. Past either bound, the earliest held
events are released at once, in order, as if the window had passed them; an event
that arrives later than one released so is late. The rule depends on the arrivals
only, so the worker and ``replay`` release alike when a key's events arrive in the
same order (one origin); with several origins, a buffer at its bound releases what
has arrived so far, which may differ.

Pure data: no clock, no I/O. The worker keeps the buffer in its changelog-backed
table (:meth:`ReorderBuffer.to_bytes`: a versioned :class:`StoredBuffer` record), so a
crash loses no held event.

Idempotent delivery: the buffer is the first state every event of its routing key
reaches, in the order each origin delivers them, which is the order of their offsets
in the input partition they were produced to (forwarded by the re-key hop in that
order too). So it keeps, per origin, the highest input offset it took
(:meth:`ReorderBuffer.first_delivery`): an event read again after a crash or a
rebalance, from the input or forwarded again, is recognised whatever its age, and
neither held nor scored twice. (Not the offset of the re-key topic: a message
forwarded again gets a new one there; its input offset stays.) ``replay`` reads its
file once and has no offsets: nothing is recognised that way, nothing needs to be.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import msgspec

from tokenradar.detectors import records
from tokenradar.detectors.records import Record
from tokenradar.schemas import TokenUsageEvent, parse_event
from tokenradar.schemas.config import DEFAULT_REORDER_MAX_EVENTS

CODEC_VERSION = 2
"""2: a :class:`StoredBuffer` record; 1 (still read): release ae4055c's JSON."""

MAX_HELD_BYTES = 512 * 1024
"""Most bytes of held events (their JSON) a buffer keeps: half the producer's default
``max.request.size`` (1 MB), as a record also carries its key, origins and framing.
Reached only by events far fatter than usual (a held event is about 345 bytes, at most
about 10 KB with every name at its longest): ``max_events`` bounds a buffer first."""


@dataclass(order=True, slots=True)
class Held:
    """An event waiting in the buffer, ordered by (time, event id, raw JSON)."""

    time: float
    event_id: str
    raw: str
    event: TokenUsageEvent = field(compare=False)
    size: int = field(compare=False)
    """Bytes of ``raw`` (UTF-8)."""


@dataclass(frozen=True, slots=True)
class Released:
    """An event let out of the buffer; ``late`` if events after it were out before."""

    event: TokenUsageEvent
    raw: str
    """The event as it arrived (JSON), to dead-letter it unchanged if scoring fails."""
    late: bool = False


class StoredBuffer(Record):
    """What a buffer stores: its held events as they arrived, and how far each origin
    and the buffer got (the window is the configuration's)."""

    newest: dict[str, float]
    frontier: float
    held: list[str]
    offsets: dict[str, int] = msgspec.field(default_factory=dict)
    """Origin -> the highest input offset taken from it (none stored before it)."""


@dataclass(slots=True)
class ReorderBuffer:
    """One routing key's held events and what each origin has delivered so far.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> def at(seconds, number):
    ...     event = TokenUsageEvent(event_id=f"e{number}", user_id="ana", model="m",
    ...         timestamp=datetime(2026, 11, 2, 9, tzinfo=UTC) + timedelta(seconds=seconds),
    ...         input_tokens=10, output_tokens=1)
    ...     return event, event.model_dump_json()
    >>> buffer = ReorderBuffer(window=60.0)
    >>> [r.event.event_id for e in (at(0, 1), at(30, 3), at(10, 2), at(100, 4))
    ...  for r in buffer.add(*e, origin="file")]
    ['e1', 'e2', 'e3']
    >>> [(r.event.event_id, r.late) for r in buffer.add(*at(5, 0), origin="file")]
    [('e0', True)]
    >>> [r.event.event_id for r in buffer.flush()]
    ['e4']
    """

    window: float
    max_events: int = DEFAULT_REORDER_MAX_EVENTS
    """Most events held; past it (or :data:`MAX_HELD_BYTES`), the earliest are released."""
    newest: dict[str, float] = field(default_factory=dict)
    """Origin -> newest event time it delivered."""
    frontier: float = -math.inf
    """Everything before it was released: an event before it is late."""
    held: list[tuple[float, str, str, Held]] = field(default_factory=list)
    """A heap, earliest first: each event as (time, event id, raw, itself), compared as
    tuples are, which Python does without calling Held's comparisons."""
    offsets: dict[str, int] = field(default_factory=dict)
    """Origin -> the highest input offset taken from it (see :meth:`first_delivery`)."""
    held_bytes: int = 0
    """Bytes of the held events' JSON."""

    def first_delivery(self, origin: str, offset: int | None) -> bool:
        """Whether the message at input ``offset`` of ``origin`` is new here; remember it.

        False for an offset at or below the highest one taken from that origin: a
        redelivery, already held or scored. ``offset`` None (no offset known: replay, or
        a message forwarded by an older worker) is always new.

        >>> buffer = ReorderBuffer(window=60.0)
        >>> [buffer.first_delivery("3", offset) for offset in (7, 8, 7, 2, 9)]
        [True, True, False, False, True]
        >>> buffer.first_delivery("direct", 2), buffer.first_delivery("3", None)
        (True, True)
        """
        if offset is None:
            return True
        if offset <= self.offsets.get(origin, -1):
            return False
        self.offsets[origin] = offset
        return True

    def add(self, event: TokenUsageEvent, raw: str, origin: str,
            progress: Mapping[str, float] | None = None) -> list[Released]:
        """Take one arrival; return what it lets out, in order (the event itself if late).

        ``progress``: the origins delivering now, with the newest event time each
        delivered for any routing key that shares this key's place (the worker's
        partition): it makes every origin known before its first event of this key,
        moves the key on with them, and leaves out an origin that stopped (a producer
        that switched to keyed messages). Without it, every origin this key heard from
        counts (replay: the file, its only origin).
        """
        time = event.epoch_seconds
        if time > self.newest.get(origin, -math.inf):
            self.newest[origin] = time
        if time < self.frontier:
            return [Released(event, raw, late=True)]
        size = len(raw.encode())
        heapq.heappush(self.held, (time, event.event_id, raw,
                                   Held(time, event.event_id, raw, event, size)))
        self.held_bytes += size
        if progress is None:
            reached = min(self.newest.values())
        else:
            reached = min(max(at, self.newest.get(other, -math.inf))
                          for other, at in progress.items())
        self.frontier = max(self.frontier, reached - self.window)
        released = []
        while self.held and (self.held[0][0] < self.frontier or self._over_bound()):
            held = heapq.heappop(self.held)[3]
            self.held_bytes -= held.size
            self.frontier = max(self.frontier, held.time)  # released early: the bound
            released.append(Released(held.event, held.raw))
        return released

    def _over_bound(self) -> bool:
        return len(self.held) > self.max_events or self.held_bytes > MAX_HELD_BYTES

    def flush(self) -> list[Released]:
        """Let everything out, in order: the input ended (replay) or went quiet (worker)."""
        released = [Released(held.event, held.raw) for *_, held in sorted(self.held)]
        if released:
            self.frontier = max(self.frontier, released[-1].event.epoch_seconds)
        self.held.clear()
        self.held_bytes = 0
        return released

    def __len__(self) -> int:
        return len(self.held)

    def to_bytes(self) -> bytes:
        return records.encode(CODEC_VERSION, StoredBuffer(
            self.newest, self.frontier, [raw for _, _, raw, _ in self.held], self.offsets))

    @classmethod
    def from_bytes(cls, raw: bytes, window: float,
                   max_events: int = DEFAULT_REORDER_MAX_EVENTS,
                   parse: Callable[[bytes], TokenUsageEvent] = parse_event) -> ReorderBuffer:
        """The stored buffer, with the configured ``window`` and ``max_events`` (either
        may have been changed: a buffer over a lowered bound releases on its next event)."""
        if raw[:1] == b"{":  # JSON: stored by release ae4055c
            from tokenradar.detectors import legacy  # it builds this module's records

            stored = legacy.reorder_buffer(raw)
        else:
            stored = records.decode(raw, CODEC_VERSION, _DECODER, "reorder buffer")
        held = []
        for text in stored.held:
            event = parse(text.encode())
            held.append((event.epoch_seconds, event.event_id, text,
                         Held(event.epoch_seconds, event.event_id, text, event,
                              len(text.encode()))))
        heapq.heapify(held)
        return cls(window=window, max_events=max_events, newest=stored.newest,
                   frontier=stored.frontier, held=held, offsets=stored.offsets,
                   held_bytes=sum(item.size for *_, item in held))


_DECODER = msgspec.msgpack.Decoder(StoredBuffer)


def held_text(event: TokenUsageEvent) -> str:
    """What a buffer keeps of an event: its contract fields as JSON, never the message's
    other fields (prompt text, padding), so that a held event costs the changelog a few
    hundred bytes whatever its producer sent, and carries nothing outside the contract.
    The worker and ``replay`` both hold this, so they order two copies of an id alike."""
    return event.model_dump_json(exclude_none=True)
